package store

import (
	"context"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/goleak"
)

// Every test stops the etcd nodes, clients, sessions and watches it starts.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait of these tests: generous, since a wait that
// times out is a failure, not a measurement.
const waitFor = 15 * time.Second

// startNode starts an embedded etcd in dir, stopped when the test ends.
func startNode(t *testing.T, cfg etcdnode.Config) *etcdnode.Node {
	t.Helper()
	cfg.Fast = true
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	n, err := etcdnode.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newClient dials n; the client is closed when the test ends (before n).
func newClient(t *testing.T, n *etcdnode.Node) *clientv3.Client {
	t.Helper()
	cli, err := n.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// newStore starts a node and returns a Store on it with its own client.
func newStore(t *testing.T) (*Store, *etcdnode.Node) {
	t.Helper()
	n := startNode(t, etcdnode.Config{})
	return New(newClient(t, n), ""), n
}

// ctxFor returns a context that ends with the test.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	t.Cleanup(cancel)
	return ctx
}

// newSession opens a session closed when the test ends, unless the test
// closed or orphaned it already.
func newSession(t *testing.T, s *Store, ttl time.Duration) *concurrency.Session {
	t.Helper()
	sess, err := s.NewSession(ctxFor(t), ttl)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-sess.Done():
		default:
			sess.Close()
		}
	})
	return sess
}

// watch starts a watch whose goroutine the test waits for at its end.
func watch[T any](t *testing.T, start func(context.Context) <-chan T) <-chan T {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := start(ctx)
	t.Cleanup(func() {
		cancel()
		for range ch {
		}
	})
	return ch
}

// recv returns the next value of ch, failing the test if none comes.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return v
	case <-time.After(waitFor):
		t.Fatalf("no value within %v", waitFor)
	}
	panic("unreachable")
}

// recvUntil receives from ch until ok(v), failing the test if that takes
// longer than waitFor.
func recvUntil[T any](t *testing.T, ch <-chan T, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(waitFor)
	var last T
	for {
		select {
		case v, open := <-ch:
			if !open {
				t.Fatalf("watch channel closed; last value %v", last)
			}
			if ok(v) {
				return v
			}
			last = v
		case <-deadline:
			t.Fatalf("no wanted value within %v; last value %v", waitFor, last)
		}
	}
}

// closed reports whether ch is closed within d.
func closed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}
