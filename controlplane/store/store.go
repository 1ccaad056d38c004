package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/internal/clock"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultPrefix is the key prefix New uses when given "".
const DefaultPrefix = "/hangar/"

// Key names under the prefix (see the package comment).
const (
	keyConfig   = "config"
	keySnapshot = "snapshot"
	dirReplicas = "replicas/"
	dirReports  = "reports/"
	dirEvents   = "events/"
	keyEventSeq = "eventseq"
	dirDrain    = "drain/"
	dirElection = "election" // concurrency.NewElection appends the '/'
)

// Errors callers test for with errors.Is.
var (
	ErrNotLeader      = errors.New("store: not the leader")
	ErrSessionExpired = errors.New("store: session expired")
	ErrBadName        = errors.New("store: bad name")
)

// Store reads and writes the control plane's keys in etcd.
type Store struct {
	cli    *clientv3.Client
	prefix string

	// EventLimit is how many events the log keeps; zero means
	// DefaultEventLimit. Set it before first use.
	EventLimit int
	// Clock stamps events and times watch restarts; nil means the wall
	// clock. Set it before first use.
	Clock clock.Clock
	// Logger receives watch restarts; nil discards them. Set it before first use.
	Logger *slog.Logger
}

// Versioned is a value with the etcd mod revision that wrote it.
type Versioned struct {
	Data []byte
	Rev  int64
}

// New returns a Store using cli, which the caller keeps owning and closes
// after the Store's last use. prefix "" means DefaultPrefix; a missing
// trailing '/' is added.
func New(cli *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Store{cli: cli, prefix: prefix}
}

func (s *Store) key(name string) string { return s.prefix + name }

// Closed reports whether the Store's etcd client has been closed.
func (s *Store) Closed() bool { return s.cli.Ctx().Err() != nil }

func (s *Store) now() time.Time { return s.clock().Now() }

func (s *Store) clock() clock.Clock {
	if s.Clock != nil {
		return s.Clock
	}
	return clock.Real{}
}

func (s *Store) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// checkName refuses names that cannot be one key segment.
func checkName(what, name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%w: %s %q: want a non-empty name without '/'", ErrBadName, what, name)
	}
	return nil
}

// PutConfig stores the fleet file if its bytes differ from the stored ones.
// It returns the config's revision: the new one when changed, the current one
// otherwise. Validation is the caller's job.
func (s *Store) PutConfig(ctx context.Context, yaml []byte) (rev int64, changed bool, err error) {
	return s.PutConfigBy(ctx, yaml, ConfigMeta{})
}

// PutConfigBy is PutConfig that records who stored the file in the config
// history.
func (s *Store) PutConfigBy(ctx context.Context, yaml []byte, meta ConfigMeta) (rev int64, changed bool, err error) {
	k := s.key(keyConfig)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(k), "=", string(yaml))).
		Then(clientv3.OpGet(k)).
		Else(clientv3.OpPut(k, string(yaml)), s.historyPut(yaml, meta)).
		Commit()
	if err != nil {
		return 0, false, fmt.Errorf("put config: %w", err)
	}
	if resp.Succeeded {
		return resp.Responses[0].GetResponseRange().Kvs[0].ModRevision, false, nil
	}
	s.trimHistory(ctx)
	return resp.Header.Revision, true, nil
}

// SeedConfig stores the fleet file only if no config is stored yet. It
// returns the stored config's revision and whether this call stored it.
func (s *Store) SeedConfig(ctx context.Context, yaml []byte, meta ConfigMeta) (rev int64, stored bool, err error) {
	k := s.key(keyConfig)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(yaml)), s.historyPut(yaml, meta)).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return 0, false, fmt.Errorf("seed config: %w", err)
	}
	if !resp.Succeeded {
		return resp.Responses[0].GetResponseRange().Kvs[0].ModRevision, false, nil
	}
	return resp.Header.Revision, true, nil
}

// Config returns the fleet file and its revision; nil and 0 when none is stored.
func (s *Store) Config(ctx context.Context) (yaml []byte, rev int64, err error) {
	v, err := s.get(ctx, s.key(keyConfig))
	if err != nil {
		return nil, 0, fmt.Errorf("get config: %w", err)
	}
	return v.Data, v.Rev, nil
}

// WatchConfig sends the fleet file now (if stored) and on every change.
func (s *Store) WatchConfig(ctx context.Context) <-chan Versioned {
	return s.watchValue(ctx, s.key(keyConfig))
}

// get reads one key; a missing key is the zero Versioned.
func (s *Store) get(ctx context.Context, key string) (Versioned, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Versioned{}, err
	}
	if len(resp.Kvs) == 0 {
		return Versioned{}, nil
	}
	return Versioned{Data: resp.Kvs[0].Value, Rev: resp.Kvs[0].ModRevision}, nil
}

// list reads every key under dir, keyed by the rest of the key.
func (s *Store) list(ctx context.Context, dir string) (map[string][]byte, error) {
	pfx := s.key(dir)
	resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m[strings.TrimPrefix(string(kv.Key), pfx)] = kv.Value
	}
	return m, nil
}

// putLeased writes key with the session's lease.
func putLeased(ctx context.Context, sess *concurrency.Session, key string, val []byte) error {
	select {
	case <-sess.Done():
		return ErrSessionExpired
	default:
	}
	_, err := sess.Client().Put(ctx, key, string(val), clientv3.WithLease(sess.Lease()))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("%w: %w", ErrSessionExpired, err)
	}
	return err
}
