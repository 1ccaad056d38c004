package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

const (
	mConvergence = "hangar_controlplane_convergence_seconds"
	mReports     = "hangar_controlplane_reports_received_total"
	mNacks       = "hangar_controlplane_snapshot_nacks_total"
	mSlow        = "hangar_controlplane_slow_agent_disconnects_total"
	mConnected   = "hangar_controlplane_agents_connected"
	mLeader      = "hangar_controlplane_leader"
)

func TestAgentGetsSnapshotAndAssignment(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	a := r.Connect(t, "agent-1", servertest.AgentOptions{})

	got := a.Await("a snapshot with the fleet's rotation", 0, servertest.Rotation(primary, backup))
	if got.Snap.GetVersion() == 0 {
		t.Errorf("snapshot version 0, want the etcd revision that wrote it")
	}
	if g := servertest.GroupState(got.Snap, group); g.GetActiveMember() != primary || g.GetState() != "healthy" {
		t.Errorf("group %s: active %q, state %q; want %q, healthy", group, g.GetActiveMember(), g.GetState(), primary)
	}
	if got.Snap.GetNonce() == "" || len(got.Snap.GetFleetConfig()) == 0 || got.Snap.GetConfigHash() == "" {
		t.Errorf("snapshot lacks nonce, fleet config or hash: %v", got.Snap)
	}
	v := c.settle(a)
	// The only agent serving both members probes both.
	servertest.Eventually(t, "agent-1 is assigned both members", func() bool {
		return slices.Equal(a.Assignment().GetProbe(), members)
	})
	servertest.Eventually(t, fmt.Sprintf("the ACK of version %d counted in %s", v, mConvergence), func() bool {
		return r.Metric(t, mConvergence) >= 1
	})
}

func TestEjectionReachesEveryAgent(t *testing.T) {
	c := newCluster(t)
	r1 := c.startReplica("cp-1")
	servertest.Eventually(t, "cp-1 leads", func() bool { return c.leader() == "cp-1" })
	r2 := c.startReplica("cp-2")
	// The ejecting agent is on the follower: its report reaches the leader
	// through etcd, and the decision every agent through both replicas.
	ejector := r2.Connect(t, "agent-1", servertest.AgentOptions{})
	agents := []*servertest.Agent{ejector, r1.Connect(t, "agent-2", servertest.AgentOptions{}), r2.Connect(t, "agent-3", servertest.AgentOptions{})}
	on := []string{"cp-2", "cp-1", "cp-2"}
	c.settle(agents...)
	marks := make([]int, len(agents))
	for i, a := range agents {
		marks[i] = a.Mark()
		if !servertest.Rotation(primary, backup)(a.Latest()) {
			t.Fatalf("%s starts with %v, want both members in rotation", a.ID, servertest.GroupState(a.Latest(), group))
		}
	}

	start := time.Now()
	ejector.Report(servertest.Called(primary, group), servertest.Called(backup)) // the only caller
	var last time.Duration
	for i, a := range agents {
		got := a.Await("my-mcp out of rotation", marks[i], servertest.Rotation(backup))
		if g := servertest.GroupState(got.Snap, group); g.GetActiveMember() != backup {
			t.Errorf("%s: active member %q, want %q", a.ID, g.GetActiveMember(), backup)
		}
		d := got.At.Sub(start)
		t.Logf("%s (on %s) has the ejection after %v", a.ID, on[i], d)
		last = max(last, d)
	}
	t.Logf("report → last of %d agents on 2 replicas: %v", len(agents), last)
	if n := r1.Metric(t, mReports) + r2.Metric(t, mReports); n != 1 {
		t.Errorf("the replicas received %v reports, want only the ejector's", n)
	}
}

func TestTrafficQuorum(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	agents := []*servertest.Agent{r.Connect(t, "agent-1", servertest.AgentOptions{}), r.Connect(t, "agent-2", servertest.AgentOptions{}), r.Connect(t, "agent-3", servertest.AgentOptions{})}
	c.settle(agents...)

	// 1 of 3 callers ejects: not more than the quorum (0.5).
	agents[0].Report(servertest.Called(primary, group), servertest.Called(backup))
	agents[1].Report(servertest.Called(primary), servertest.Called(backup))
	agents[2].Report(servertest.Called(primary), servertest.Called(backup))
	rec := c.decidedAfterReports(r, 3)
	if g := servertest.GroupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
		t.Fatalf("1 of 3 callers ejecting changed the rotation to %v; want %v", g.GetRotation(), members)
	}

	// 2 of 3 callers eject.
	marks := []int{agents[0].Mark(), agents[1].Mark(), agents[2].Mark()}
	agents[1].Report(servertest.Called(primary, group), servertest.Called(backup))
	for i, a := range agents {
		a.Await("my-mcp out of rotation after 2 of 3 callers ejected it", marks[i], servertest.Rotation(backup))
	}
	c.expectEvent("member_out_of_rotation", primary, "traffic_quorum")
}

// decidedAfterReports waits until r received n change reports, then makes
// the leader decide once more (a barrier agent serving nothing connects)
// and returns that decision: it saw the reports.
func (c *cluster) decidedAfterReports(r *servertest.Replica, n float64) *hangarv1.SnapshotRecord {
	c.t.Helper()
	servertest.Eventually(c.t, fmt.Sprintf("%v reports received", n), func() bool { return r.Metric(c.t, mReports) >= n })
	r.Connect(c.t, "barrier", servertest.AgentOptions{Servers: []string{}})
	var rec *hangarv1.SnapshotRecord
	servertest.Eventually(c.t, "a decision that counts the barrier agent", func() bool {
		rec, _ = c.Record()
		_, ok := rec.GetAssignments()["barrier"]
		return ok
	})
	return rec
}

// expectEvent waits for an event of kind about server whose message holds
// text.
func (c *cluster) expectEvent(kind, server, text string) {
	c.t.Helper()
	servertest.Eventually(c.t, fmt.Sprintf("event %s %s (%s)", kind, server, text), func() bool {
		events, err := c.Store.Events(c.Ctx, 0, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range events {
			if e.Kind == kind && e.Server == server && strings.Contains(e.Message, text) {
				return true
			}
		}
		return false
	})
}

func TestProbers(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	agents := map[string]*servertest.Agent{}
	for _, id := range []string{"agent-1", "agent-2", "agent-3"} {
		agents[id] = r.Connect(t, id, servertest.AgentOptions{})
	}
	c.settle(agents["agent-1"], agents["agent-2"], agents["agent-3"])

	// Each member is probed by 2 of the 3 agents.
	probers := map[string][]string{}
	servertest.Eventually(t, "every agent has its assignment", func() bool {
		clear(probers)
		for id, a := range agents {
			if a.Assignment() == nil {
				return false
			}
			for _, m := range a.Assignment().GetProbe() {
				probers[m] = append(probers[m], id)
			}
		}
		return len(probers[primary]) == 2 && len(probers[backup]) == 2
	})
	if len(probers) != 2 {
		t.Fatalf("probers by member %v: want only %v", probers, members)
	}
	slices.Sort(probers[primary])
	p1, p2 := agents[probers[primary][0]], agents[probers[primary][1]]
	var other *servertest.Agent
	for id, a := range agents {
		if !slices.Contains(probers[primary], id) {
			other = a
		}
	}
	t.Logf("my-mcp probed by %v, not by %s", probers[primary], other.ID)

	// The assigned probers split 1:1; an unassigned agent's verdict does
	// not count.
	p1.Report(servertest.Probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	p2.Report(servertest.Probed(primary, hangarv1.MemberState_MEMBER_STATE_READY))
	other.Report(servertest.Probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	rec := c.decidedAfterReports(r, 3)
	if g := servertest.GroupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
		t.Fatalf("1 of 2 assigned probers (and an unassigned agent) saying DEGRADED changed the rotation to %v", g.GetRotation())
	}

	// The majority of the assigned probers say DEGRADED.
	mark := p1.Mark()
	p2.Report(servertest.Probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	got := p1.Await("my-mcp out of rotation by its probers", mark, servertest.Rotation(backup))
	for _, s := range got.Snap.GetServers() {
		if s.GetId() == primary && (s.GetState() != hangarv1.MemberState_MEMBER_STATE_DEGRADED || s.GetReason() != "probers") {
			t.Errorf("server %s: %v (%q), want DEGRADED (probers)", primary, s.GetState(), s.GetReason())
		}
	}
	c.expectEvent("member_out_of_rotation", primary, "probers")
}

func TestLeaderHandover(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*servertest.Replica) error
	}{
		{"stopped", (*servertest.Replica).Stop},  // resigns, revokes its session
		{"crashed", (*servertest.Replica).Crash}, // its lease expires after the TTL
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1 := c.startReplica("cp-1")
			servertest.Eventually(t, "cp-1 leads", func() bool { return c.leader() == "cp-1" })
			r2 := c.startReplica("cp-2")
			gone := r1.Connect(t, "agent-1", servertest.AgentOptions{})
			stay := []*servertest.Agent{r2.Connect(t, "agent-2", servertest.AgentOptions{}), r2.Connect(t, "agent-3", servertest.AgentOptions{})}
			c.settle(gone, stay[0], stay[1])

			start := time.Now()
			if err := tc.stop(r1); err != nil {
				t.Fatal(err)
			}
			servertest.Eventually(t, "cp-2 leads", func() bool { return c.leader() == "cp-2" && r2.Metric(t, mLeader) == 1 })
			took := time.Since(start)
			t.Logf("cp-1 %s → cp-2 leads after %v (TTL %v)", tc.name, took, ttl)
			if took > 2*ttl {
				t.Errorf("cp-2 took %v to lead, want within 2 × TTL = %v", took, 2*ttl)
			}

			marks := []int{stay[0].Mark(), stay[1].Mark()}
			stay[0].Report(servertest.Called(primary, group), servertest.Called(backup))
			for i, a := range stay {
				a.Await("the new leader's decision on a later report", marks[i], servertest.Rotation(backup))
				if err := a.StreamErr(); err != nil {
					t.Errorf("%s: stream to the surviving replica ended: %v", a.ID, err)
				}
			}
		})
	}
}

func TestNackedVersionIsNotResent(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	a := r.Connect(t, "agent-1", servertest.AgentOptions{NoAck: true})
	// The agent NACKs its first snapshot (it ACKs none: the next waits).
	first := a.Await("a first snapshot", 0, func(*hangarv1.Snapshot) bool { return true })
	v, nonce := first.Snap.GetVersion(), first.Snap.GetNonce()
	err := a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{Version: v, Nonce: nonce, Error: "test: refused"}}})
	if err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "the NACK counted", func() bool { return r.Metric(t, mNacks) == 1 })
	mark := a.Mark()

	// A later version is sent; the NACKed one never again.
	if err := c.Store.Drain(c.Ctx, group, backup); err != nil {
		t.Fatal(err)
	}
	// The agent ACKs every later snapshot: each waits for the ACK of the last.
	var got servertest.Received
	var acked uint64
	servertest.Eventually(t, "the next version (backup drained)", func() bool {
		snaps := a.Snapshots()
		l := snaps[len(snaps)-1]
		if l.Snap.GetVersion() != v && l.Snap.GetVersion() != acked {
			acked = l.Snap.GetVersion()
			if err := a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: acked, Nonce: l.Snap.GetNonce()}}}); err != nil {
				t.Fatal(err)
			}
		}
		got = l
		return slices.Equal(servertest.GroupState(l.Snap, group).GetDrained(), []string{backup})
	})
	if got.Snap.GetVersion() <= v {
		t.Errorf("next version %d, want > the NACKed %d", got.Snap.GetVersion(), v)
	}
	for _, s := range a.Snapshots()[mark:] {
		if s.Snap.GetVersion() == v {
			t.Errorf("NACKed version %d was sent again", v)
		}
	}
}

func TestSlowAgentIsDisconnected(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	// The stuck agent's own connection, with fixed flow-control windows, so
	// that what the control plane can write before blocking is bounded.
	conn, err := grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fast := []*servertest.Agent{r.Connect(t, "agent-1", servertest.AgentOptions{}), r.Connect(t, "agent-2", servertest.AgentOptions{})}
	stuck := r.Connect(t, "agent-stuck", servertest.AgentOptions{Conn: conn, NoRead: true})
	c.settle(fast[0], fast[1], stuck)

	// The stuck agent is slow once 16 versions came and its snapshot stayed
	// unACKed for slowAfter (10 s).
	toggles := 0
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); toggles++ {
		if r.Metric(t, mSlow) >= 1 && r.Metric(t, mConnected) == 2 {
			break
		}
		marks := []int{fast[0].Mark(), fast[1].Mark()}
		drained := toggles%2 == 0
		if drained {
			err = c.Store.Drain(c.Ctx, group, backup)
		} else {
			err = c.Store.Undrain(c.Ctx, group, backup)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range fast {
			a.Await(fmt.Sprintf("toggle %d (drained %v)", toggles, drained), marks[i], func(s *hangarv1.Snapshot) bool {
				return (len(servertest.GroupState(s, group).GetDrained()) == 1) == drained
			})
		}
	}
	t.Logf("%d snapshots written; %s = %v, %s = %v", toggles, mSlow, r.Metric(t, mSlow), mConnected, r.Metric(t, mConnected))
	c.settle(fast...) // the decision without the stuck agent
	if r.Metric(t, mSlow) != 1 || r.Metric(t, mConnected) != 2 {
		t.Errorf("after %d snapshots: %s = %v, %s = %v; want the stuck agent disconnected, once",
			toggles, mSlow, r.Metric(t, mSlow), mConnected, r.Metric(t, mConnected))
	}
	// Every toggle reached the fast agents (Await above), on their streams.
	for _, a := range fast {
		if err := a.StreamErr(); err != nil {
			t.Errorf("%s: stream ended: %v", a.ID, err)
		}
	}
	// The stuck agent finally reads: what was queued, then the reason.
	for {
		if _, err := stuck.Recv(); err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("stuck agent's stream ended with %v, want ResourceExhausted", err)
			}
			break
		}
	}
}

func TestHelloRefused(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	for _, tc := range []struct {
		name  string
		first *hangarv1.AgentMessage
		want  string
	}{
		{"empty agent id", &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: &hangarv1.Hello{Servers: members}}}, "--agent-id"},
		{"report first", &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: &hangarv1.Report{}}}, "must be Hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(c.Ctx, servertest.WaitFor)
			defer cancel()
			stream, err := hangarv1.NewAgentServiceClient(r.Conn).Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(tc.first); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("stream ended with %v; want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	if n := r.Metric(t, mConnected); n != 0 {
		t.Errorf("%s = %v after refused streams, want 0", mConnected, n)
	}
}

// Agents that compress what they send get compressed snapshots, the others
// plain ones, from the same encoded-once messages: one agent dialing with
// gzip must not break every other agent's stream.
func TestAgentsWithAndWithoutCompression(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	gz := r.Connect(t, "agent-gzip-1", servertest.AgentOptions{Compressor: gzip.Name})
	gz.Await("a first snapshot", 0, func(*hangarv1.Snapshot) bool { return true }) // gzip encodes first
	agents := []*servertest.Agent{gz,
		r.Connect(t, "agent-plain-1", servertest.AgentOptions{}),
		r.Connect(t, "agent-gzip-2", servertest.AgentOptions{Compressor: gzip.Name}),
		r.Connect(t, "agent-plain-2", servertest.AgentOptions{})}
	c.settle(agents...)
	marks := make([]int, len(agents))
	for i, a := range agents {
		marks[i] = a.Mark()
	}
	agents[1].Report(servertest.Called(primary, group), servertest.Called(backup))
	for i, a := range agents {
		a.Await("my-mcp out of rotation", marks[i], servertest.Rotation(backup))
		if err := a.StreamErr(); err != nil {
			t.Errorf("%s: stream ended: %v", a.ID, err)
		}
	}
}
