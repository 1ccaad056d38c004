package admin

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

const (
	ready  = hangarv1.MemberState_MEMBER_STATE_READY
	closed = hangarv1.BreakerState_BREAKER_STATE_CLOSED
	open   = hangarv1.BreakerState_BREAKER_STATE_OPEN
)

// latencies is 100 calls of 5–10 ms and 100 of 10–25 ms: p50 is 10 ms, p99
// 98 % into the second bucket.
var latencies = []uint64{0, 0, 0, 0, 100, 100}

const (
	wantP50 = 0.010
	wantP99 = 0.010 + 0.015*0.98
)

// probersOf inverts the snapshot's assignments: the agents probing member.
func probersOf(rec *hangarv1.SnapshotRecord, member string) []string {
	var out []string
	for id, a := range rec.GetAssignments() {
		if slices.Contains(a.GetProbe(), member) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGroupStatus(t *testing.T) {
	e := newEnv(t, nil)
	a1, a2 := e.connect("agent-1", true), e.connect("agent-2", true)
	a3 := e.connect("agent-3", false) // never ACKs
	a3.ReportGroups(false, nil, servertest.Member(primary, nil, nil), servertest.Member(backup, nil, nil))

	// agent-1 and agent-2 call my-mcp; agent-2 has it out of its local
	// rotation: 1 of 2 callers is not more than the quorum.
	a1.ReportGroups(true, servertest.GroupReport(closed, 2),
		servertest.Member(primary, map[string]uint64{"ok": 120, "timeout": 6, "tool_error": 3, "caller_error": 1}, latencies),
		servertest.Member(backup, nil, nil))
	a2.ReportGroups(true, servertest.GroupReport(closed, 1),
		servertest.Member(primary, map[string]uint64{"ok": 60, "server_error": 3}, nil, group),
		servertest.Member(backup, nil, nil))

	var gs *hangarv1.GroupStatus
	servertest.Eventually(t, "2 of 3 agents ACK the snapshot that assigns all three, my-mcp in rotation", func() bool {
		var err error
		if gs, err = e.admin.GetGroupStatus(e.ctx, &hangarv1.GetGroupStatusRequest{Group: group}); err != nil {
			t.Fatal(err)
		}
		rec, v := e.etcd.Record()
		return gs.GetSnapshotVersion() == v && len(rec.GetAssignments()) == 3 &&
			gs.GetAgentsAcked() == 2 && gs.GetAgentsTotal() == 3 &&
			gs.GetMembers()[0].GetCallers() == 2 && gs.GetMembers()[0].GetInRotation()
	})
	rec, _ := e.etcd.Record()
	want := &hangarv1.GroupStatus{
		Id: group, Description: "Primary/backup MCP failover", Strategy: "priority", State: "healthy", MinHealthy: 1,
		Breaker:      &hangarv1.BreakerStatus{State: closed, OpenAgents: 0, CallingAgents: 2, ConsecutiveFailures: 2},
		ActiveMember: primary,
		Members: []*hangarv1.MemberStatus{
			{Id: primary, Priority: 1, Weight: 1, State: ready, InRotation: true,
				Probers: probersOf(rec, primary), ProbesReady: 2,
				OkPerSecond: 3, ErrorPerSecond: 0.15, P50Seconds: wantP50, P99Seconds: wantP99,
				Ejecting: []string{"agent-2"}, Callers: 2},
			{Id: backup, Priority: 2, Weight: 1, State: ready, InRotation: true,
				Probers: probersOf(rec, backup), ProbesReady: 2},
		},
		SnapshotVersion: gs.GetSnapshotVersion(), AgentsAcked: 2, AgentsTotal: 3,
	}
	if diff := cmp.Diff(want, gs, protocmp.Transform(), protocmp.IgnoreFields(&hangarv1.GroupStatus{}, "recent_events"),
		cmp.Comparer(func(a, b float64) bool { return near(a, b) })); diff != "" {
		t.Errorf("GetGroupStatus (-want +got):\n%s", diff)
	}
	if len(want.Members[0].Probers) != 2 {
		t.Errorf("my-mcp has probers %v, want 2 of the 3 agents", want.Members[0].Probers)
	}

	// agent-1 ejects it too: 2 of 2 callers, out by traffic quorum.
	mark := a1.Mark()
	a1.ReportGroups(false, servertest.GroupReport(closed, 2),
		servertest.Member(primary, map[string]uint64{}, nil, group), servertest.Member(backup, nil, nil))
	a1.Await("my-mcp out of rotation", mark, servertest.Rotation(backup))
	gs = groupStatus(t, e)
	m := gs.GetMembers()[0]
	if m.GetInRotation() || m.GetReason() != "traffic_quorum" || !slices.Equal(m.GetEjecting(), []string{"agent-1", "agent-2"}) {
		t.Errorf("my-mcp: in_rotation %v, reason %q, ejecting %v; want out, traffic_quorum, both agents",
			m.GetInRotation(), m.GetReason(), m.GetEjecting())
	}
	if gs.GetActiveMember() != backup || gs.GetState() != "healthy" {
		t.Errorf("active %q, state %q; want %q, healthy", gs.GetActiveMember(), gs.GetState(), backup)
	}
	if !near(m.GetOkPerSecond(), 3) {
		t.Errorf("ok/s %v after a change report; want the minute's 3 still", m.GetOkPerSecond())
	}

	// Both callers' breakers open: the group breaker is open fleet-wide.
	mark = a1.Mark()
	a1.ReportGroups(false, servertest.GroupReport(open, 3), servertest.Member(primary, map[string]uint64{}, nil, group), servertest.Member(backup, nil, nil))
	a2.ReportGroups(false, servertest.GroupReport(open, 5), servertest.Member(primary, map[string]uint64{}, nil, group), servertest.Member(backup, nil, nil))
	a1.Await("the breaker open", mark, func(s *hangarv1.Snapshot) bool { return servertest.GroupState(s, group).GetBreaker() == open })
	gs = groupStatus(t, e)
	b := gs.GetBreaker()
	if gs.GetState() != "degraded" || b.GetState() != open || b.GetOpenAgents() != 2 || b.GetCallingAgents() != 2 || b.GetConsecutiveFailures() != 5 {
		t.Errorf("state %q, breaker %v; want degraded, open by 2 of 2 callers, 5 consecutive failures", gs.GetState(), b)
	}
	var opened *hangarv1.Event
	for _, ev := range gs.GetRecentEvents() {
		if ev.GetKind() == "circuit_opened" {
			opened = ev
		}
	}
	if opened == nil {
		t.Fatalf("recent events %v lack circuit_opened", gs.GetRecentEvents())
	}
	if got, want := b.GetHalfOpensAt().AsTime(), opened.GetTime().AsTime().Add(30*time.Second); !got.Equal(want) {
		t.Errorf("half_opens_at %v, want the opening %v plus reset_timeout_s 30", got, opened.GetTime().AsTime())
	}
	if n := len(gs.GetRecentEvents()); n == 0 || n > recentEvents {
		t.Errorf("%d recent events, want 1..%d", n, recentEvents)
	}
	for _, ev := range gs.GetRecentEvents() {
		if ev.GetGroup() != group {
			t.Errorf("recent event %v is not the group's", ev)
		}
	}
}

func groupStatus(t *testing.T, e *env) *hangarv1.GroupStatus {
	t.Helper()
	gs, err := e.admin.GetGroupStatus(e.ctx, &hangarv1.GetGroupStatusRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func TestServersAgentsAndCluster(t *testing.T) {
	e := newEnv(t, nil)
	a1 := e.connect("agent-1", true)
	a1.ReportGroups(true, nil,
		servertest.Member(primary, map[string]uint64{"ok": 30, "connect_error": 6, "tool_error": 2}, latencies),
		servertest.Member(backup, nil, nil))
	var ss *hangarv1.ServerStatus
	servertest.Eventually(t, "the heartbeat counted", func() bool {
		var err error
		ss, err = e.admin.GetServerStatus(e.ctx, &hangarv1.GetServerStatusRequest{Server: primary})
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := e.etcd.Record()
		return len(ss.GetCalls()) > 0 && len(rec.GetAssignments()["agent-1"].GetProbe()) == 2
	})
	rec, version := e.etcd.Record()
	want := &hangarv1.ServerStatus{
		Id: primary, Mode: "remote", Endpoint: "http://localhost:8080/mcp", State: ready, Groups: []string{group},
		Probers: probersOf(rec, primary), ProbesReady: 1,
		OkPerSecond: 0.5, ErrorPerSecond: 0.1, P50Seconds: wantP50, P99Seconds: wantP99,
		Calls: map[string]uint64{"ok": 30, "connect_error": 6, "tool_error": 2},
	}
	if diff := cmp.Diff(want, ss, protocmp.Transform(), cmp.Comparer(func(a, b float64) bool { return near(a, b) })); diff != "" {
		t.Errorf("GetServerStatus (-want +got):\n%s", diff)
	}

	ls, err := e.admin.ListServers(e.ctx, &hangarv1.ListServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.GetServers()) != 2 || ls.GetServers()[0].GetId() != primary || ls.GetServers()[1].GetId() != backup {
		t.Errorf("ListServers: %v, want my-mcp and my-mcp-backup", ls.GetServers())
	}
	lg, err := e.admin.ListGroups(e.ctx, &hangarv1.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.GetGroups()) != 1 || lg.GetGroups()[0].GetId() != group || lg.GetSnapshotVersion() == 0 {
		t.Errorf("ListGroups: %v", lg)
	}

	_, err = e.admin.GetServerStatus(e.ctx, &hangarv1.GetServerStatusRequest{Server: "nope"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "servers: my-mcp, my-mcp-backup") {
		t.Errorf("unknown server: %v; want NotFound naming the servers", err)
	}
	_, err = e.admin.GetGroupStatus(e.ctx, &hangarv1.GetGroupStatusRequest{Group: "nope"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "groups: my-mcp-group") {
		t.Errorf("unknown group: %v; want NotFound naming the groups", err)
	}

	la, err := e.admin.ListAgents(e.ctx, &hangarv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(la.GetAgents()) != 1 {
		t.Fatalf("ListAgents: %v, want agent-1", la)
	}
	ag := la.GetAgents()[0]
	if ag.GetId() != "agent-1" || ag.GetHost() != "host-agent-1" || ag.GetReplica() != "cp-1" || ag.GetLabels()["zone"] != "z1" ||
		ag.GetConnected() == nil || ag.GetLastReport() == nil {
		t.Errorf("agent: %v", ag)
	}
	if !slices.Equal(ag.GetProbes(), rec.GetAssignments()["agent-1"].GetProbe()) || len(ag.GetProbes()) != 2 {
		t.Errorf("agent-1 probes %v, want its assignment %v (both members)", ag.GetProbes(), rec.GetAssignments()["agent-1"].GetProbe())
	}

	cs, err := e.admin.GetClusterStatus(e.ctx, &hangarv1.GetClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantCS := &hangarv1.ClusterStatus{
		Replicas: []*hangarv1.Replica{{Name: "cp-1", Address: e.addr, Leader: true}},
		Leader:   "cp-1", SnapshotVersion: version, Agents: 1,
	}
	if diff := cmp.Diff(wantCS, cs, protocmp.Transform(), protocmp.IgnoreFields(&hangarv1.ClusterStatus{}, "etcd")); diff != "" {
		t.Errorf("GetClusterStatus (-want +got):\n%s", diff)
	}
	if len(cs.GetEtcd()) != 1 || !cs.GetEtcd()[0].GetHealthy() || !cs.GetEtcd()[0].GetLeader() || cs.GetEtcd()[0].GetVersion() == "" {
		t.Errorf("etcd endpoints: %v, want one healthy leader", cs.GetEtcd())
	}
}
