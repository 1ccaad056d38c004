package etcdnode

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger returns the logger etcd writes to: a no-op unless log has debug
// enabled, in which case every etcd message becomes a debug record of log
// (etcd's own level kept as the etcd_level attribute). etcd logs benign
// errors on every shutdown, so they must not reach an operator by default.
func zapLogger(log *slog.Logger) *zap.Logger {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return zap.NewNop()
	}
	return zap.New(&slogCore{log: log.With("component", "etcd")})
}

// slogCore is a zapcore.Core that forwards entries to a slog.Logger.
type slogCore struct {
	log   *slog.Logger
	attrs []any
}

func (c *slogCore) Enabled(zapcore.Level) bool { return true }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, attrs: append(slices.Clip(c.attrs), fieldAttrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	args := append(slices.Clip(c.attrs), fieldAttrs(fields)...)
	args = append(args, slog.String("etcd_level", e.Level.String()))
	if e.LoggerName != "" {
		args = append(args, slog.String("logger", e.LoggerName))
	}
	c.log.Debug(e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs encodes zap fields as slog attributes, sorted by key.
func fieldAttrs(fields []zapcore.Field) []any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}

// ZapLogger returns a zap logger that writes through log (at debug level,
// attribute component=etcd), for an etcd client of an external cluster: its
// logs then share the process's slog format instead of zap's JSON.
func ZapLogger(log *slog.Logger) *zap.Logger { return zapLogger(log) }
