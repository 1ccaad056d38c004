package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

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
	a := r.connect(t, "agent-1", agentOpts{})

	got := a.await("a snapshot with the fleet's rotation", 0, rotation(primary, backup))
	if got.snap.GetVersion() == 0 {
		t.Errorf("snapshot version 0, want the etcd revision that wrote it")
	}
	if g := groupState(got.snap, group); g.GetActiveMember() != primary || g.GetState() != "healthy" {
		t.Errorf("group %s: active %q, state %q; want %q, healthy", group, g.GetActiveMember(), g.GetState(), primary)
	}
	if got.snap.GetNonce() == "" || len(got.snap.GetFleetConfig()) == 0 || got.snap.GetConfigHash() == "" {
		t.Errorf("snapshot lacks nonce, fleet config or hash: %v", got.snap)
	}
	v := c.settle(a)
	// The only agent serving both members probes both.
	eventually(t, "agent-1 is assigned both members", func() bool {
		return slices.Equal(a.assignment().GetProbe(), members)
	})
	eventually(t, fmt.Sprintf("the ACK of version %d counted in %s", v, mConvergence), func() bool {
		return r.metric(t, mConvergence) >= 1
	})
}

func TestEjectionReachesEveryAgent(t *testing.T) {
	c := newCluster(t)
	r1 := c.startReplica("cp-1")
	eventually(t, "cp-1 leads", func() bool { return c.leader() == "cp-1" })
	r2 := c.startReplica("cp-2")
	// The ejecting agent is on the follower: its report reaches the leader
	// through etcd, and the decision every agent through both replicas.
	ejector := r2.connect(t, "agent-1", agentOpts{})
	agents := []*agent{ejector, r1.connect(t, "agent-2", agentOpts{}), r2.connect(t, "agent-3", agentOpts{})}
	on := []string{"cp-2", "cp-1", "cp-2"}
	c.settle(agents...)
	marks := make([]int, len(agents))
	for i, a := range agents {
		marks[i] = a.mark()
		if !rotation(primary, backup)(a.latest()) {
			t.Fatalf("%s starts with %v, want both members in rotation", a.id, groupState(a.latest(), group))
		}
	}

	start := time.Now()
	ejector.report(called(primary, group), called(backup)) // the only caller
	var last time.Duration
	for i, a := range agents {
		got := a.await("my-mcp out of rotation", marks[i], rotation(backup))
		if g := groupState(got.snap, group); g.GetActiveMember() != backup {
			t.Errorf("%s: active member %q, want %q", a.id, g.GetActiveMember(), backup)
		}
		d := got.at.Sub(start)
		t.Logf("%s (on %s) has the ejection after %v", a.id, on[i], d)
		last = max(last, d)
	}
	t.Logf("report → last of %d agents on 2 replicas: %v", len(agents), last)
	if n := r1.metric(t, mReports) + r2.metric(t, mReports); n != 1 {
		t.Errorf("the replicas received %v reports, want only the ejector's", n)
	}
}

func TestTrafficQuorum(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	agents := []*agent{r.connect(t, "agent-1", agentOpts{}), r.connect(t, "agent-2", agentOpts{}), r.connect(t, "agent-3", agentOpts{})}
	c.settle(agents...)

	// 1 of 3 callers ejects: not more than the quorum (0.5).
	agents[0].report(called(primary, group), called(backup))
	agents[1].report(called(primary), called(backup))
	agents[2].report(called(primary), called(backup))
	rec := c.decidedAfterReports(r, 3)
	if g := groupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
		t.Fatalf("1 of 3 callers ejecting changed the rotation to %v; want %v", g.GetRotation(), members)
	}

	// 2 of 3 callers eject.
	marks := []int{agents[0].mark(), agents[1].mark(), agents[2].mark()}
	agents[1].report(called(primary, group), called(backup))
	for i, a := range agents {
		a.await("my-mcp out of rotation after 2 of 3 callers ejected it", marks[i], rotation(backup))
	}
	c.expectEvent("member_out_of_rotation", primary, "traffic_quorum")
}

// decidedAfterReports waits until r received n change reports, then makes
// the leader decide once more (a barrier agent serving nothing connects)
// and returns that decision: it saw the reports.
func (c *cluster) decidedAfterReports(r *replica, n float64) *hangarv1.SnapshotRecord {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("%v reports received", n), func() bool { return r.metric(c.t, mReports) >= n })
	r.connect(c.t, "barrier", agentOpts{servers: []string{}})
	var rec *hangarv1.SnapshotRecord
	eventually(c.t, "a decision that counts the barrier agent", func() bool {
		rec, _ = c.record()
		_, ok := rec.GetAssignments()["barrier"]
		return ok
	})
	return rec
}

// expectEvent waits for an event of kind about server whose message holds
// text.
func (c *cluster) expectEvent(kind, server, text string) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("event %s %s (%s)", kind, server, text), func() bool {
		events, err := c.store.Events(c.ctx, 0, 0)
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
	agents := map[string]*agent{}
	for _, id := range []string{"agent-1", "agent-2", "agent-3"} {
		agents[id] = r.connect(t, id, agentOpts{})
	}
	c.settle(agents["agent-1"], agents["agent-2"], agents["agent-3"])

	// Each member is probed by 2 of the 3 agents.
	probers := map[string][]string{}
	eventually(t, "every agent has its assignment", func() bool {
		clear(probers)
		for id, a := range agents {
			if a.assignment() == nil {
				return false
			}
			for _, m := range a.assignment().GetProbe() {
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
	var other *agent
	for id, a := range agents {
		if !slices.Contains(probers[primary], id) {
			other = a
		}
	}
	t.Logf("my-mcp probed by %v, not by %s", probers[primary], other.id)

	// The assigned probers split 1:1; an unassigned agent's verdict does
	// not count.
	p1.report(probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	p2.report(probed(primary, hangarv1.MemberState_MEMBER_STATE_READY))
	other.report(probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	rec := c.decidedAfterReports(r, 3)
	if g := groupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
		t.Fatalf("1 of 2 assigned probers (and an unassigned agent) saying DEGRADED changed the rotation to %v", g.GetRotation())
	}

	// The majority of the assigned probers say DEGRADED.
	mark := p1.mark()
	p2.report(probed(primary, hangarv1.MemberState_MEMBER_STATE_DEGRADED))
	got := p1.await("my-mcp out of rotation by its probers", mark, rotation(backup))
	for _, s := range got.snap.GetServers() {
		if s.GetId() == primary && (s.GetState() != hangarv1.MemberState_MEMBER_STATE_DEGRADED || s.GetReason() != "probers") {
			t.Errorf("server %s: %v (%q), want DEGRADED (probers)", primary, s.GetState(), s.GetReason())
		}
	}
	c.expectEvent("member_out_of_rotation", primary, "probers")
}

func TestLeaderHandover(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*replica) error
	}{
		{"stopped", (*replica).stop},  // resigns, revokes its session
		{"crashed", (*replica).crash}, // its lease expires after the TTL
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1 := c.startReplica("cp-1")
			eventually(t, "cp-1 leads", func() bool { return c.leader() == "cp-1" })
			r2 := c.startReplica("cp-2")
			gone := r1.connect(t, "agent-1", agentOpts{})
			stay := []*agent{r2.connect(t, "agent-2", agentOpts{}), r2.connect(t, "agent-3", agentOpts{})}
			c.settle(gone, stay[0], stay[1])

			start := time.Now()
			if err := tc.stop(r1); err != nil {
				t.Fatal(err)
			}
			eventually(t, "cp-2 leads", func() bool { return c.leader() == "cp-2" && r2.metric(t, mLeader) == 1 })
			took := time.Since(start)
			t.Logf("cp-1 %s → cp-2 leads after %v (TTL %v)", tc.name, took, ttl)
			if took > 2*ttl {
				t.Errorf("cp-2 took %v to lead, want within 2 × TTL = %v", took, 2*ttl)
			}

			marks := []int{stay[0].mark(), stay[1].mark()}
			stay[0].report(called(primary, group), called(backup))
			for i, a := range stay {
				a.await("the new leader's decision on a later report", marks[i], rotation(backup))
				if err := a.streamErr(); err != nil {
					t.Errorf("%s: stream to the surviving replica ended: %v", a.id, err)
				}
			}
		})
	}
}

func TestNackedVersionIsNotResent(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	a := r.connect(t, "agent-1", agentOpts{noAck: true})
	v := c.settle(a)
	nonce := a.latest().GetNonce()
	err := a.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{Version: v, Nonce: nonce, Error: "test: refused"}}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the NACK counted", func() bool { return r.metric(t, mNacks) == 1 })
	mark := a.mark()

	// A later version is sent; the NACKed one never again.
	if err := c.store.Drain(c.ctx, group, backup); err != nil {
		t.Fatal(err)
	}
	got := a.await("the next version (backup drained)", mark, func(s *hangarv1.Snapshot) bool {
		return slices.Equal(groupState(s, group).GetDrained(), []string{backup})
	})
	if got.snap.GetVersion() <= v {
		t.Errorf("next version %d, want > the NACKed %d", got.snap.GetVersion(), v)
	}
	for _, s := range a.snapshots()[mark:] {
		if s.snap.GetVersion() == v {
			t.Errorf("NACKed version %d was sent again", v)
		}
	}
	if n := r.metric(t, mConvergence); n != 0 {
		t.Errorf("%s counts %v ACKs; the agent only NACKed", mConvergence, n)
	}
}

func TestSlowAgentIsDisconnected(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	// The stuck agent's own connection, with fixed flow-control windows, so
	// that what the control plane can write before blocking is bounded.
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fast := []*agent{r.connect(t, "agent-1", agentOpts{}), r.connect(t, "agent-2", agentOpts{})}
	stuck := r.connect(t, "agent-stuck", agentOpts{conn: conn, noRead: true})
	base := c.settle(fast[0], fast[1], stuck)

	// Every version written from here on, as etcd has them.
	ctx, cancel := context.WithCancel(c.ctx)
	written := c.store.WatchSnapshot(ctx)
	var (
		mu       sync.Mutex
		versions []uint64
	)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for v := range written {
			mu.Lock()
			versions = append(versions, uint64(v.Rev))
			mu.Unlock()
		}
	}()

	toggles := 0
	for ; toggles < 400; toggles++ {
		if r.metric(t, mSlow) >= 1 && r.metric(t, mConnected) == 2 {
			break
		}
		marks := []int{fast[0].mark(), fast[1].mark()}
		drained := toggles%2 == 0
		if drained {
			err = c.store.Drain(c.ctx, group, backup)
		} else {
			err = c.store.Undrain(c.ctx, group, backup)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range fast {
			a.await(fmt.Sprintf("toggle %d (drained %v)", toggles, drained), marks[i], func(s *hangarv1.Snapshot) bool {
				return (len(groupState(s, group).GetDrained()) == 1) == drained
			})
		}
	}
	t.Logf("%d snapshots written; %s = %v, %s = %v", toggles, mSlow, r.metric(t, mSlow), mConnected, r.metric(t, mConnected))
	last := c.settle(fast...) // the decision without the stuck agent
	eventually(t, "the watch sees the last version", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(versions) > 0 && versions[len(versions)-1] == last
	})
	cancel()
	<-watched
	if r.metric(t, mSlow) != 1 || r.metric(t, mConnected) != 2 {
		t.Errorf("after %d snapshots: %s = %v, %s = %v; want the stuck agent disconnected, once",
			toggles, mSlow, r.metric(t, mSlow), mConnected, r.metric(t, mConnected))
	}
	for _, a := range fast {
		got := map[uint64]bool{}
		for _, s := range a.snapshots() {
			got[s.snap.GetVersion()] = true
		}
		for _, v := range versions {
			if v > base && !got[v] {
				t.Errorf("%s missed snapshot version %d", a.id, v)
			}
		}
		if err := a.streamErr(); err != nil {
			t.Errorf("%s: stream ended: %v", a.id, err)
		}
	}
	// The stuck agent finally reads: what was queued, then the reason.
	for {
		if _, err := stuck.stream.Recv(); err != nil {
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
			ctx, cancel := context.WithTimeout(c.ctx, waitFor)
			defer cancel()
			stream, err := hangarv1.NewAgentServiceClient(r.conn).Connect(ctx)
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
	if n := r.metric(t, mConnected); n != 0 {
		t.Errorf("%s = %v after refused streams, want 0", mConnected, n)
	}
}
