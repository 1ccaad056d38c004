package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSessionEndRemovesReplicaKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	s1, s2 := newSession(t, s, time.Second), newSession(t, s, time.Second)
	reports := watch(t, s.WatchReports)
	if m := recv(t, reports); len(m) != 0 {
		t.Fatalf("first WatchReports value = %q, want empty", m)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.RegisterReplica(ctx, s1, "cp-1", "10.0.0.1:7400"))
	must(s.RegisterReplica(ctx, s2, "cp-2", "10.0.0.2:7400"))
	must(s.PutReport(ctx, s1, "cp-1", []byte("r1")))
	must(s.PutReport(ctx, s2, "cp-2", []byte("r2")))

	both := map[string][]byte{"cp-1": []byte("r1"), "cp-2": []byte("r2")}
	recvUntil(t, reports, func(m map[string][]byte) bool { return cmp.Equal(m, both) })
	if got, err := s.Replicas(ctx); err != nil || !cmp.Equal(got, map[string]string{"cp-1": "10.0.0.1:7400", "cp-2": "10.0.0.2:7400"}) {
		t.Fatalf("Replicas() = %v, %v", got, err)
	}

	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, reports, func(m map[string][]byte) bool { return cmp.Equal(m, map[string][]byte{"cp-2": []byte("r2")}) })
	if got, err := s.Replicas(ctx); err != nil || !cmp.Equal(got, map[string]string{"cp-2": "10.0.0.2:7400"}) {
		t.Errorf("Replicas() after cp-1's session ended = %v, %v", got, err)
	}

	if err := s.PutReport(ctx, s1, "cp-1", []byte("late")); !errors.Is(err, ErrSessionExpired) {
		t.Errorf("PutReport with a closed session: %v, want ErrSessionExpired", err)
	}
}

// A lease that is gone on the server (revoked behind the session's back)
// is reported as an expired session.
func TestPutWithLostLease(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	sess := newSession(t, s, time.Second)
	if _, err := s.cli.Revoke(ctx, sess.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReport(ctx, sess, "cp-1", nil); !errors.Is(err, ErrSessionExpired) {
		t.Errorf("PutReport with a revoked lease: %v, want ErrSessionExpired", err)
	}
}

func TestDrains(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	w := watch(t, s.WatchDrained)
	if m := recv(t, w); len(m) != 0 {
		t.Fatalf("first WatchDrained value = %v, want empty", m)
	}
	steps := []struct {
		name string
		do   func() error
		want map[string][]string
	}{
		{"drain", func() error { return s.Drain(ctx, "g1", "b") }, map[string][]string{"g1": {"b"}}},
		{"drain more", func() error {
			return errors.Join(s.Drain(ctx, "g1", "a"), s.Drain(ctx, "g2", "c"), s.Drain(ctx, "g1", "a"))
		}, map[string][]string{"g1": {"a", "b"}, "g2": {"c"}}},
		{"undrain", func() error {
			return errors.Join(s.Undrain(ctx, "g1", "b"), s.Undrain(ctx, "g2", "c"), s.Undrain(ctx, "g2", "never"))
		}, map[string][]string{"g1": {"a"}}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := recvUntil(t, w, func(m map[string][]string) bool { return cmp.Equal(m, st.want) })
		if all, err := s.Drained(ctx); err != nil || !cmp.Equal(all, got) {
			t.Fatalf("%s: Drained() = %v, %v; watch sent %v", st.name, all, err, got)
		}
	}
	for _, bad := range [][2]string{{"", "a"}, {"g", ""}, {"g/h", "a"}, {"g", "a/b"}} {
		if err := s.Drain(ctx, bad[0], bad[1]); !errors.Is(err, ErrBadName) {
			t.Errorf("Drain(%q, %q): %v, want ErrBadName", bad[0], bad[1], err)
		}
	}
}

func TestBreakerResets(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.WatchBreakerResets(ctx)
	if first := <-w; len(first) != 0 {
		t.Fatalf("initial resets %v, want none", first)
	}
	for want := uint64(1); want <= 3; want++ {
		n, err := s.ResetBreaker(ctx, "g")
		if err != nil || n != want {
			t.Fatalf("ResetBreaker = %d, %v; want %d", n, err, want)
		}
		if got := <-w; got["g"] != want {
			t.Fatalf("watch saw %v, want g=%d", got, want)
		}
	}
	if _, err := s.ResetBreaker(ctx, "a/b"); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad group name: %v", err)
	}
}
