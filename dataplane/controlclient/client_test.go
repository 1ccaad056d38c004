package controlclient

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func TestHello(t *testing.T) {
	cp := startCP(t)
	h := run(t, []string{cp.addr}, func(o *Options) {
		o.SnapshotVersion, o.Instance, o.ConfigSource, o.ConfigSHA256 = 7, "process-1", "local", "abc123"
	}, nil)
	fs := cp.accept(t)

	want := &hangarv1.Hello{
		AgentId: "agent-1", Host: "host-a", Labels: map[string]string{"zone": "eu-1"}, Version: "1.2.3",
		Capabilities:    1<<hangarv1.Capability_CAPABILITY_SNAPSHOTS | 1<<hangarv1.Capability_CAPABILITY_ASSIGNMENTS,
		SnapshotVersion: 7,
		Servers:         []string{"my-mcp", "my-mcp-backup"},
		Instance:        "process-1", ConfigSource: "local", ConfigSha256: "abc123",
	}
	if diff := cmp.Diff(want, fs.hello(t), protocmp.Transform()); diff != "" {
		t.Errorf("Hello (-want +got):\n%s", diff)
	}
	if r := fs.report(t); r.GetHeartbeat() || r.GetSeq() != 1 {
		t.Errorf("first report: heartbeat=%v seq=%d, want an edge report with seq 1", r.GetHeartbeat(), r.GetSeq())
	}
	if got, want := h.c.Status(), (Status{Connected: true, Endpoint: cp.addr, SnapshotVersion: 7}); got != want {
		t.Errorf("Status() = %+v, want %+v", got, want)
	}
	if want := "msg=control_plane_connected endpoint=" + cp.addr; !strings.Contains(h.logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, h.logs)
	}
}

func snapshot(version uint64, nonce string) *hangarv1.ControlMessage {
	return &hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Snapshot{Snapshot: &hangarv1.Snapshot{
		Version: version, Nonce: nonce, FleetConfig: []byte("mcp_servers: {}\n"), ConfigHash: "abc",
		Groups: []*hangarv1.GroupState{{Id: "g", State: "healthy", Rotation: []string{"my-mcp"}}},
	}}}
}

func TestSnapshots(t *testing.T) {
	cp := startCP(t)
	dir := t.TempDir()
	h := run(t, []string{cp.addr}, func(o *Options) { o.StateDir = dir },
		func(c *Client) { c.agent.(*fakeAgent).fail = map[uint64]error{4: errApply, 6: errApply} })
	fs := cp.accept(t)
	fs.hello(t)
	fs.report(t)

	expect := func(t *testing.T, want *hangarv1.AgentMessage) {
		t.Helper()
		if diff := cmp.Diff(want, fs.next(t), protocmp.Transform()); diff != "" {
			t.Fatalf("reply (-want +got):\n%s", diff)
		}
	}
	nack := func(v uint64, nonce string) *hangarv1.AgentMessage {
		return &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{
			Version: v, Nonce: nonce, Error: errApply.Error()}}}
	}
	saved := func(t *testing.T) *hangarv1.Snapshot {
		t.Helper()
		s, err := LoadState(dir, nil)
		if err != nil {
			t.Fatalf("LoadState: %v", err)
		}
		if len(s) == 0 {
			return nil
		}
		return s[0]
	}

	t.Run("rejected first snapshot is NACKed and not written", func(t *testing.T) {
		fs.send(t, snapshot(4, "n4"))
		expect(t, nack(4, "n4"))
		if s := saved(t); s != nil {
			t.Errorf("state file holds version %d after a NACK", s.GetVersion())
		}
		if v := h.c.Status().SnapshotVersion; v != 0 {
			t.Errorf("SnapshotVersion = %d after a NACK, want 0", v)
		}
	})
	t.Run("applied snapshot is ACKed and written", func(t *testing.T) {
		fs.send(t, snapshot(5, "n5"))
		expect(t, ack(5, "n5"))
		if diff := cmp.Diff(snapshot(5, "n5").GetSnapshot(), saved(t), protocmp.Transform()); diff != "" {
			t.Errorf("LoadState (-want +got):\n%s", diff)
		}
		if st := h.c.Status(); st.SnapshotVersion != 5 || !st.LastSnapshot.Equal(epoch) {
			t.Errorf("Status() = %+v, want version 5 applied at %v", st, epoch)
		}
	})
	t.Run("lower version is NACKed unapplied, failing one NACKed and old state kept", func(t *testing.T) {
		fs.send(t, snapshot(3, "n3"))
		// Answered, so that the control plane sends what the agent needs
		// instead of waiting for an answer forever.
		expect(t, &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{
			Version: 3, Nonce: "n3", Error: "snapshot version 3 is older than the running version 5"}}})
		fs.send(t, snapshot(6, "n6"))
		expect(t, nack(6, "n6"))
		if v := saved(t).GetVersion(); v != 5 {
			t.Errorf("state file holds version %d, want 5", v)
		}
		if v := h.c.Status().SnapshotVersion; v != 5 {
			t.Errorf("SnapshotVersion = %d, want 5", v)
		}
		if !strings.Contains(h.logs.String(), "msg=snapshot_ignored version=3 applied_version=5") {
			t.Errorf("no snapshot_ignored log:\n%s", h.logs)
		}
	})
	t.Run("same version again is ACKed without reapplying", func(t *testing.T) {
		fs.send(t, snapshot(5, "n5b"))
		expect(t, ack(5, "n5b"))
	})
	t.Run("assignment", func(t *testing.T) {
		fs.send(t, &hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Assignment{Assignment: &hangarv1.Assignment{
			Version: 7, Probe: []string{"my-mcp"}}}})
		fs.send(t, snapshot(7, "n7")) // its Ack proves the assignment was handled
		expect(t, ack(7, "n7"))
		h.agent.mu.Lock()
		defer h.agent.mu.Unlock()
		if diff := cmp.Diff([][]string{{"my-mcp"}}, h.agent.assigned); diff != "" {
			t.Errorf("AssignProbes calls (-want +got):\n%s", diff)
		}
	})
	if diff := cmp.Diff([]uint64{4, 5, 6, 7}, h.agent.appliedVersions()); diff != "" {
		t.Errorf("ApplySnapshot versions (-want +got):\n%s", diff)
	}
}

// downAddr returns a loopback address that refuses connections.
func downAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestReconnect(t *testing.T) {
	cp := startCP(t)
	down := downAddr(t)
	delays := make(chan time.Duration, 16)
	h := run(t, []string{down, cp.addr},
		func(o *Options) { o.MaxBackoff = 300 * time.Millisecond },
		func(c *Client) {
			c.jitter = func(d time.Duration) time.Duration { return d } // no jitter: check the ceilings
			c.onRetry = func(d time.Duration) { delays <- d }
		})
	// retry waits for the Client's next backoff, checks it and the number
	// of Detach calls so far, and lets the fake time pass.
	retry := func(t *testing.T, want time.Duration, detaches int) {
		t.Helper()
		var got time.Duration
		select {
		case got = <-delays:
		case <-time.After(wait):
			t.Fatal("the client did not back off")
		}
		if got != want {
			t.Errorf("backoff = %v, want %v", got, want)
		}
		if n := h.agent.detachCount(); n != detaches {
			t.Errorf("Detach called %d times, want %d", n, detaches)
		}
		if st := h.c.Status(); st.Connected || st.Endpoint != "" {
			t.Errorf("Status() = %+v while backing off", st)
		}
		h.clk.WaitForTimers(1)
		h.clk.Advance(got)
	}
	connected := func(t *testing.T) *fakeStream {
		t.Helper()
		fs := cp.accept(t)
		fs.hello(t)
		fs.report(t)
		if st := h.c.Status(); !st.Connected || st.Endpoint != cp.addr {
			t.Errorf("Status() = %+v, want connected to %s", st, cp.addr)
		}
		return fs
	}

	retry(t, 100*time.Millisecond, 1) // the first endpoint is down: detach at once
	fs := connected(t)
	close(fs.end)
	// The stream delivered nothing: the agent is still detached, and a
	// short stream without a snapshot does not reset the backoff.
	retry(t, 200*time.Millisecond, 1)
	retry(t, 300*time.Millisecond, 1) // the first endpoint is still down; capped
	fs = connected(t)
	fs.send(t, &hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Assignment{Assignment: &hangarv1.Assignment{
		Version: 9, Probe: []string{"my-mcp"}}}})
	fs.send(t, snapshot(9, "n9"))
	if m := fs.next(t); m.GetAck().GetVersion() != 9 {
		t.Fatalf("got %v, want Ack of version 9", m)
	}
	close(fs.end)
	retry(t, 100*time.Millisecond, 2) // attached, then lost: detach; a snapshot arrived: backoff reset
	retry(t, 200*time.Millisecond, 2) // retries do not detach again
	fs = cp.accept(t)
	if v := fs.hello(t).GetSnapshotVersion(); v != 9 {
		t.Errorf("Hello after reconnect has snapshot_version %d, want 9", v)
	}
	fs.report(t)
	// The agent detached since it applied version 9 (its rotation and
	// breaker opinions were dropped): the same version is applied again.
	fs.send(t, snapshot(9, "n9b"))
	if m := fs.next(t); m.GetAck().GetVersion() != 9 {
		t.Fatalf("got %v, want Ack of version 9", m)
	}
	if diff := cmp.Diff([]uint64{9, 9}, h.agent.appliedVersions()); diff != "" {
		t.Errorf("ApplySnapshot versions (-want +got):\n%s", diff)
	}
	h.clk.WaitForTimers(1)
	h.clk.Advance(healthyStream + time.Second) // a long-lived stream resets the backoff
	fs.report(t)
	close(fs.end)
	retry(t, 100*time.Millisecond, 3) // the re-applied snapshot attached it: lost again, detach again

	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "msg=control_plane_disconnected"); n != 6 {
		t.Errorf("%d control_plane_disconnected logs, want 6 (none for the cancel):\n%s", n, logs)
	}
	if !strings.Contains(logs, "replica going away") || !strings.Contains(logs, "connection refused") {
		t.Errorf("disconnect logs lack their causes:\n%s", logs)
	}
	if n := h.agent.detachCount(); n != 3 {
		t.Errorf("Detach called %d times, want 3", n)
	}
}

func TestRunWithoutEndpoints(t *testing.T) {
	if err := New(&fakeAgent{}, Options{}).Run(t.Context()); err != ErrNoEndpoints {
		t.Errorf("Run() = %v, want ErrNoEndpoints", err)
	}
}

// silentAddr returns a loopback address that accepts TCP connections and
// never answers, like a frozen replica.
func silentAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

func TestSilentReplica(t *testing.T) {
	cp := startCP(t)
	delays := make(chan time.Duration, 4)
	h := run(t, []string{silentAddr(t), cp.addr}, nil, func(c *Client) {
		c.jitter = func(d time.Duration) time.Duration { return d }
		c.onRetry = func(d time.Duration) { delays <- d }
	})
	h.clk.WaitForTimers(1) // the dial timeout
	h.clk.Advance(dialTimeout)
	select {
	case d := <-delays:
		h.clk.WaitForTimers(1)
		h.clk.Advance(d)
	case <-time.After(wait):
		t.Fatal("the client kept waiting for a silent replica")
	}
	if n := h.agent.detachCount(); n != 1 {
		t.Errorf("Detach called %d times, want 1", n)
	}
	if want := "no answer within 5s"; !strings.Contains(h.logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, h.logs)
	}
	cp.accept(t).hello(t) // the next replica is tried
}
