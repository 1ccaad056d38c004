// Package agent is the hangar-agent command: it loads the fleet file, starts
// the router (health checks, rotation, breakers) and serves the front door
// over stdio or Streamable HTTP until it is stopped.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/hangarmesh/hangar/internal/endpoints"
	"github.com/hangarmesh/hangar/internal/settingsfile"
	"github.com/hangarmesh/hangar/internal/version"
)

// Run runs the hangar-agent command line with args (without the program
// name) until ctx ends or the front door closes.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := newRoot(stdin, stdout, stderr)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRootWith(stdin, stdout, stderr, func(ctx context.Context, s Settings) error {
		return serveCmd(ctx, s, stdin, stdout, stderr)
	})
}

// newRootWith builds the command line; serve runs the serve command with
// the settings gathered from flags, environment and defaults.
func newRootWith(stdin io.Reader, stdout, stderr io.Writer, serve func(context.Context, Settings) error) *cobra.Command {
	v := viper.New()
	root := &cobra.Command{
		Use:   "hangar-agent",
		Short: "MCP gateway with health checks, rotation, circuit breakers and failover",
		Long: "hangar-agent routes MCP tool calls to groups of upstream MCP servers, failing over inside a call\n" +
			"when a member fails. It reads MCP Hangar's configuration file unchanged.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("config", "", "fleet configuration file (env MCP_CONFIG)")
	must(v.BindPFlag("config", root.PersistentFlags().Lookup("config")))
	must(v.BindEnv("config", "MCP_CONFIG", "HANGAR_CONFIG"))

	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve MCP on stdio (default) or Streamable HTTP (--http)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := readSettingsFile(v); err != nil {
				return err
			}
			s, err := settingsFrom(v)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), s)
		},
	}
	f := serveCmd.Flags()
	f.String("settings", "", "settings file (YAML/TOML/JSON) with any of these flags as keys; flags and HANGAR_* variables win over it")
	f.Bool("http", false, "serve Streamable HTTP at /mcp instead of stdio")
	f.String("host", "127.0.0.1", "HTTP bind host (env MCP_HTTP_HOST)")
	f.Int("port", 8000, "HTTP port, 0 for any free port (env MCP_HTTP_PORT)")
	f.String("log-file", "", "write logs to this file instead of standard error")
	f.String("log-level", "info", "debug, info, warn or error (env HANGAR_LOG_LEVEL)")
	f.Bool("json-logs", false, "log JSON lines")
	f.String("auth-token-file", "", "require this bearer token from HTTP clients")
	f.Bool("unsafe-no-auth", false, "allow a non-loopback HTTP bind without a token")
	f.String("metrics-listen", "", "serve /metrics on this HOST:PORT instead of the front door's port, where it needs the token when one is set; with stdio, serve /metrics and the health endpoints there")
	f.String("access-log", "", "write one JSON line per call (time, session, group, member, tool, outcome, attempts, latency, error type) to this file, or - for standard output with --http")
	addLimitFlags(f)
	f.Duration("session-idle-timeout", 10*time.Minute, "close an HTTP client session (and its upstream sessions) after this long without a request")
	f.Int("max-sessions", 1000, "most HTTP client sessions open at once; a new client beyond it gets an error")
	f.StringSlice("control-plane", nil, "control-plane replicas HOST:PORT[,HOST:PORT…] (env HANGAR_CONTROL_PLANE): report to them and follow their snapshots")
	f.String("agent-id", "", "stable agent id for the control plane (default: the host name plus a random suffix, kept in --state-dir)")
	f.String("state-dir", "", "keep the last accepted snapshot here and boot from it when no replica answers")
	f.StringSlice("groups", nil, "groups this agent serves (env HANGAR_GROUPS): the control plane sends routing state for these and those it calls (default: every group of its fleet)")
	f.String("cp-ca-file", "", "CA bundle that signs the control plane's certificates (enables TLS)")
	f.String("cp-cert-file", "", "client certificate for the control plane (mTLS)")
	f.String("cp-key-file", "", "client key for the control plane (mTLS)")
	f.String("cp-token-file", "", "bearer token for the control plane")
	f.Bool("cp-insecure", false, "allow plaintext to a non-loopback control plane")
	for _, name := range []string{"http", "host", "port", "log-file", "log-level", "json-logs", "auth-token-file", "unsafe-no-auth",
		"session-idle-timeout", "max-sessions", "control-plane", "agent-id", "state-dir", "groups", "cp-ca-file", "cp-cert-file", "cp-key-file", "cp-token-file", "cp-insecure",
		"metrics-listen", "access-log"} {
		must(v.BindPFlag(name, f.Lookup(name)))
	}
	bindLimitFlags(v, f)
	must(v.BindEnv("session-idle-timeout", "HANGAR_SESSION_IDLE_TIMEOUT"))
	must(v.BindEnv("max-sessions", "HANGAR_MAX_SESSIONS"))
	must(v.BindEnv("control-plane", "HANGAR_CONTROL_PLANE"))
	must(v.BindEnv("agent-id", "HANGAR_AGENT_ID"))
	must(v.BindEnv("state-dir", "HANGAR_STATE_DIR"))
	must(v.BindEnv("groups", "HANGAR_GROUPS"))
	must(v.BindEnv("host", "MCP_HTTP_HOST", "HANGAR_HTTP_HOST"))
	must(v.BindEnv("port", "MCP_HTTP_PORT", "HANGAR_HTTP_PORT"))
	must(v.BindEnv("log-level", "HANGAR_LOG_LEVEL", "MCP_LOG_LEVEL"))
	must(v.BindEnv("json-logs", "HANGAR_JSON_LOGS"))
	must(v.BindEnv("auth-token-file", "HANGAR_AUTH_TOKEN_FILE"))
	must(v.BindEnv("metrics-listen", "HANGAR_METRICS_LISTEN"))
	must(v.BindEnv("access-log", "HANGAR_ACCESS_LOG"))
	must(v.BindPFlag("settings", f.Lookup("settings")))
	must(v.BindEnv("settings", "HANGAR_SETTINGS"))
	// Every other flag also reads HANGAR_<FLAG> (HANGAR_CP_CA_FILE for
	// --cp-ca-file), as the control plane's do.
	v.SetEnvPrefix("HANGAR")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	root.AddCommand(serveCmd)
	return root
}

// readSettingsFile reads --settings (keys are flag names) under the flags
// and environment variables.
func readSettingsFile(v *viper.Viper) error {
	f := v.GetString("settings")
	if f == "" {
		return nil
	}
	return settingsfile.Read(v, f)
}

func settingsFrom(v *viper.Viper) (Settings, error) {
	s := Settings{
		ConfigPath:    v.GetString("config"),
		HTTP:          v.GetBool("http"),
		Host:          v.GetString("host"),
		Port:          v.GetInt("port"),
		LogFile:       v.GetString("log-file"),
		LogLevel:      v.GetString("log-level"),
		JSONLogs:      v.GetBool("json-logs"),
		AuthTokenFile: v.GetString("auth-token-file"),
		UnsafeNoAuth:  v.GetBool("unsafe-no-auth"),
		MetricsAddr:   v.GetString("metrics-listen"),
		AccessLog:     v.GetString("access-log"),
		SessionIdle:   v.GetDuration("session-idle-timeout"),
		MaxSessions:   v.GetInt("max-sessions"),
		ControlPlane:  endpoints.Split(v.GetStringSlice("control-plane")),
		AgentID:       v.GetString("agent-id"),
		StateDir:      v.GetString("state-dir"),
		Groups:        endpoints.Split(v.GetStringSlice("groups")),
		CPCAFile:      v.GetString("cp-ca-file"),
		CPCertFile:    v.GetString("cp-cert-file"),
		CPKeyFile:     v.GetString("cp-key-file"),
		CPTokenFile:   v.GetString("cp-token-file"),
		CPInsecure:    v.GetBool("cp-insecure"),
		source:        v,
	}
	var err error
	if s.Limits, err = limitsFrom(v); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// newLogger builds the process logger; the returned closer closes a log
// file. Its level can change while it runs (--settings reloads).
func newLogger(s Settings, stderr io.Writer) (*slog.Logger, *slog.LevelVar, io.Closer, error) {
	level := new(slog.LevelVar)
	if err := setLevel(level, s.LogLevel); err != nil {
		return nil, nil, nil, err
	}
	var w io.Writer = stderr
	var closer io.Closer = io.NopCloser(nil)
	if s.LogFile != "" {
		file, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open --log-file: %w", err)
		}
		w, closer = file, file
	}
	opts := &slog.HandlerOptions{Level: level}
	if s.JSONLogs {
		return slog.New(slog.NewJSONHandler(w, opts)), level, closer, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), level, closer, nil
}

// setLevel sets level from a --log-level value.
func setLevel(level *slog.LevelVar, name string) error {
	var l slog.Level
	lv := strings.ToLower(name)
	if lv == "warning" {
		lv = "warn"
	}
	if err := l.UnmarshalText([]byte(lv)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	level.Set(l)
	return nil
}

// settingsReloader reads --settings again on SIGHUP; nil without one.
// Reloadable: log-level; every other setting needs a restart (logged).
func settingsReloader(s Settings, level *slog.LevelVar, log *slog.Logger) *settingsfile.Reloader {
	if s.source == nil || s.source.GetString("settings") == "" {
		return nil
	}
	return settingsfile.NewReloader(s.source, s.source.GetString("settings"),
		map[string]func(string) error{"log-level": func(v string) error { return setLevel(level, v) }},
		func() error { _, err := settingsFrom(s.source); return err }, log)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ExitCode maps an error from Run to a process exit code.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	}
	return 1
}
