package store

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	"github.com/hangarmesh/hangar/internal/testutil"
)

func TestWatchSnapshot(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, etcdnode.Config{Dir: dir})
	var logs testutil.LogBuffer
	s := New(newClient(t, n), "/test/")
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := ctxFor(t)
	sess := newSession(t, s, 5*time.Second)
	l, err := s.Campaign(ctx, sess, "cp-1")
	if err != nil {
		t.Fatal(err)
	}
	put := func(data string) int64 {
		t.Helper()
		rev, err := s.PutSnapshot(ctx, l, []byte(data))
		if err != nil {
			t.Fatalf("PutSnapshot(%s): %v", data, err)
		}
		return rev
	}
	expect := func(w <-chan Versioned, data string, rev int64) {
		t.Helper()
		if v := recv(t, w); string(v.Data) != data || v.Rev != rev {
			t.Fatalf("WatchSnapshot sent %q@%d, want %q@%d", v.Data, v.Rev, data, rev)
		}
	}

	empty := watch(t, s.WatchSnapshot) // started before any snapshot
	r1 := put("v1")
	expect(empty, "v1", r1)

	w := watch(t, s.WatchSnapshot)
	expect(w, "v1", r1) // the current one first
	r2, r3 := put("v2"), put("v3")
	put("v3") // unchanged: no new version
	r4 := put("v4")
	for _, want := range []struct {
		data string
		rev  int64
	}{{"v2", r2}, {"v3", r3}, {"v4", r4}} {
		expect(w, want.data, want.rev)
	}
	if !(r1 < r2 && r2 < r3 && r3 < r4) {
		t.Errorf("revisions not increasing: %d %d %d %d", r1, r2, r3, r4)
	}

	// etcd restarts on the same dir and port, and history is compacted
	// before the watch can resume: the watch reads the snapshot again.
	url := n.Endpoints()[0]
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, etcdnode.Config{Dir: dir, ClientURL: url})
	other := New(newClient(t, n2), "/test/")
	for i := range 5 {
		other.cli.Put(ctx, fmt.Sprintf("/filler/%d", i), "x")
	}
	r5, err := other.PutSnapshot(ctx, l, []byte("v5"))
	if err != nil {
		t.Fatalf("PutSnapshot after restart: %v", err)
	}
	if _, err := other.cli.Compact(ctx, r5); err != nil {
		t.Fatal(err)
	}
	expect(w, "v5", r5)
	expect(empty, "v2", r2) // the other watch was not read meanwhile
	t.Logf("watch restarted after compaction: %v", strings.Contains(logs.String(), "store_watch_restarted"))
	// Revoke the lease while the node it lives on is up.
	if err := sess.Close(); err != nil {
		t.Errorf("close session: %v", err)
	}
}
