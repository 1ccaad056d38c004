package store

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type campaignResult struct {
	l   *Leadership
	err error
	at  time.Time
}

// campaignAsync campaigns in a goroutine the test waits for.
func campaignAsync(t *testing.T, s *Store, sess *concurrency.Session, name string) <-chan campaignResult {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan campaignResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, err := s.Campaign(ctx, sess, name)
		out <- campaignResult{l, err, time.Now()}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// waitCandidates waits until n replicas have an election key.
func waitCandidates(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := s.cli.Get(ctxFor(t), s.key(dirElection)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d candidates, want %d", resp.Count, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestElectionHandover(t *testing.T) {
	const ttl = time.Second
	for _, tc := range []struct {
		name string
		end  func(*concurrency.Session) // how the first leader goes away
	}{
		{"session closed", func(s *concurrency.Session) { s.Close() }},
		{"replica died", func(s *concurrency.Session) { s.Orphan() }}, // lease expires
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := ctxFor(t)
			if name, err := s.Leader(ctx); err != nil || name != "" {
				t.Fatalf("Leader() before any campaign = %q, %v", name, err)
			}
			s1, s2 := newSession(t, s, ttl), newSession(t, s, ttl)
			l1, err := s.Campaign(ctx, s1, "cp-1")
			if err != nil {
				t.Fatal(err)
			}
			if name, err := s.Leader(ctx); err != nil || name != "cp-1" || l1.Name() != "cp-1" {
				t.Fatalf("Leader() = %q, %v; want cp-1", name, err)
			}

			second := campaignAsync(t, s, s2, "cp-2")
			waitCandidates(t, s, 2)
			select {
			case r := <-second:
				t.Fatalf("second campaign returned while the first leads: %v", r.err)
			default:
			}

			start := time.Now()
			tc.end(s1)
			if !closed(l1.Done(), waitFor) {
				t.Fatal("first leader's Done not closed")
			}
			r := recv(t, second)
			if r.err != nil {
				t.Fatalf("second campaign: %v", r.err)
			}
			t.Logf("handover after %s: %v (session TTL %v)", tc.name, r.at.Sub(start).Round(time.Millisecond), ttl)
			if name, err := s.Leader(ctx); err != nil || name != "cp-2" {
				t.Fatalf("Leader() after handover = %q, %v; want cp-2", name, err)
			}

			if err := r.l.Resign(ctx); err != nil {
				t.Fatalf("Resign: %v", err)
			}
			if !closed(r.l.Done(), 0) {
				t.Fatal("Done not closed after Resign")
			}
			if name, err := s.Leader(ctx); err != nil || name != "" {
				t.Fatalf("Leader() after Resign = %q, %v; want none", name, err)
			}
		})
	}
}

func TestCampaignErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	sess := newSession(t, s, time.Second)
	if _, err := s.Campaign(ctx, sess, "a/b"); !errors.Is(err, ErrBadName) {
		t.Errorf("Campaign with a bad name: %v, want ErrBadName", err)
	}

	// A campaign that cannot win gives up when its context ends.
	if _, err := s.Campaign(ctx, sess, "cp-1"); err != nil {
		t.Fatal(err)
	}
	other := newSession(t, s, time.Second)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Campaign(cctx, other, "cp-2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked Campaign: %v, want DeadlineExceeded", err)
	}

	sess.Close()
	if _, err := s.Campaign(ctx, sess, "cp-1"); !errors.Is(err, ErrSessionExpired) {
		t.Errorf("Campaign with a closed session: %v, want ErrSessionExpired", err)
	}
}

func TestDeposedLeaderCannotWriteSnapshot(t *testing.T) {
	s, n := newStore(t)
	ctx := ctxFor(t)
	s1, s2 := newSession(t, s, time.Second), newSession(t, s, time.Second)
	l1, err := s.Campaign(ctx, s1, "cp-1")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.PutSnapshot(ctx, l1, []byte("v1"))
	if err != nil {
		t.Fatalf("leader's PutSnapshot: %v", err)
	}
	if rev, err := s.PutSnapshot(ctx, l1, []byte("v1")); err != nil || rev != v1 {
		t.Fatalf("unchanged PutSnapshot = %d, %v; want %d (no write)", rev, err, v1)
	}
	// A copy of l1 that will never notice the deposition, as a leader that
	// is paused or partitioned.
	stale := &Leadership{name: l1.name, el: l1.el, key: l1.key, rev: l1.rev, done: make(chan struct{})}

	second := campaignAsync(t, s, s2, "cp-2")
	waitCandidates(t, s, 2)
	// The lease of cp-1 is revoked behind its back (as when it stops
	// renewing it): it keeps its session object but no longer leads.
	other := newClient(t, n)
	if _, err := other.Revoke(ctx, s1.Lease()); err != nil {
		t.Fatal(err)
	}
	r := recv(t, second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	v2, err := s.PutSnapshot(ctx, r.l, []byte("v2"))
	if err != nil {
		t.Fatalf("new leader's PutSnapshot: %v", err)
	}

	if !closed(l1.Done(), waitFor) {
		t.Fatal("deposed leader's Done not closed")
	}
	for name, l := range map[string]*Leadership{"noticed": l1, "not noticed": stale, "nil": nil} {
		if _, err := s.PutSnapshot(ctx, l, []byte("v3")); !errors.Is(err, ErrNotLeader) {
			t.Errorf("deposed leader (%s) PutSnapshot: %v, want ErrNotLeader", name, err)
		}
	}
	if data, rev, err := s.Snapshot(ctx); err != nil || string(data) != "v2" || rev != v2 {
		t.Fatalf("Snapshot() = %q@%d, %v; want the new leader's v2@%d", data, rev, err, v2)
	}
}
