package hangarctl

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// adminToken is the bearer token the fake gives admin rights; any other
// caller may only read.
const adminToken = "admin-secret"

// fakeAdmin is an AdminService returning fixed data, with the errors the
// real one gives for unknown names, invalid configs and missing rights.
type fakeAdmin struct {
	hangarv1.UnimplementedAdminServiceServer

	mu         sync.Mutex
	groupCalls int // GetGroupStatus calls so far; each sees a newer snapshot
	applied    []*hangarv1.ApplyConfigRequest
	drained    []string
	live       []*hangarv1.Event // sent to follow streams after the past events
	follows    []*hangarv1.WatchEventsRequest

	stop func() // stops the server; safe to call more than once
}

// at is 2026-03-14 15:04:05 UTC plus s seconds.
func at(s int) *timestamppb.Timestamp {
	return timestamppb.New(time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC).Add(time.Duration(s) * time.Second))
}

var pastEvents = []*hangarv1.Event{
	{Seq: 1, Time: at(-300), Kind: "config_applied", Message: "revision 7"},
	{Seq: 2, Time: at(-60), Kind: "member_out_of_rotation", Group: "my-mcp-group", Server: "my-mcp-old", Message: "2/2 probers report degraded"},
	{Seq: 3, Time: at(-30), Kind: "circuit_opened", Group: "search", Message: "3/4 calling agents have the breaker open"},
}

var liveEvents = []*hangarv1.Event{
	{Seq: 4, Time: at(10), Kind: "member_in_rotation", Group: "my-mcp-group", Server: "my-mcp-old", Message: "2/2 probers report ready"},
	{Seq: 5, Time: at(20), Kind: "failover", Group: "my-mcp-group", Server: "my-mcp", Message: "active member my-mcp-backup → my-mcp"},
}

func groups() []*hangarv1.GroupStatus {
	return []*hangarv1.GroupStatus{
		{
			Id: "my-mcp-group", Description: "the team's MCP tools", Strategy: "priority", State: "healthy", MinHealthy: 1,
			Breaker:      &hangarv1.BreakerStatus{State: hangarv1.BreakerState_BREAKER_STATE_CLOSED, CallingAgents: 3},
			ActiveMember: "my-mcp",
			Members: []*hangarv1.MemberStatus{
				{Id: "my-mcp", Priority: 1, Weight: 1, State: hangarv1.MemberState_MEMBER_STATE_READY, InRotation: true,
					Probers: []string{"agent-1", "agent-2"}, ProbesReady: 2, OkPerSecond: 42.5, ErrorPerSecond: 0.1,
					P50Seconds: 0.0031, P99Seconds: 0.0402, Callers: 3},
				{Id: "my-mcp-backup", Priority: 2, Weight: 1, State: hangarv1.MemberState_MEMBER_STATE_READY, InRotation: true,
					Probers: []string{"agent-2", "agent-3"}, ProbesReady: 2},
				{Id: "my-mcp-old", Priority: 3, Weight: 1, State: hangarv1.MemberState_MEMBER_STATE_DEGRADED, Reason: "probers",
					Probers: []string{"agent-1", "agent-3"}, ProbesDegraded: 2, ErrorPerSecond: 0.5, P50Seconds: 5, P99Seconds: 5,
					Ejecting: []string{"agent-1"}, Callers: 3},
			},
			SnapshotVersion: 12, AgentsAcked: 12, AgentsTotal: 12,
			RecentEvents: []*hangarv1.Event{pastEvents[1]},
		},
		{
			Id: "search", Strategy: "round_robin", State: "degraded", MinHealthy: 1,
			Breaker: &hangarv1.BreakerStatus{State: hangarv1.BreakerState_BREAKER_STATE_OPEN, OpenAgents: 3, CallingAgents: 4,
				ConsecutiveFailures: 5, HalfOpensAt: at(30)},
			Members: []*hangarv1.MemberStatus{
				{Id: "search-a", Priority: 1, Weight: 3, State: hangarv1.MemberState_MEMBER_STATE_DEAD, Reason: "traffic_quorum",
					Probers: []string{"agent-1"}, ProbesDegraded: 1, ErrorPerSecond: 7.25, P50Seconds: 0.25, P99Seconds: 1.5,
					Ejecting: []string{"agent-1", "agent-2", "agent-3"}, Callers: 4},
				{Id: "search-b", Priority: 1, Weight: 1, State: hangarv1.MemberState_MEMBER_STATE_READY, Reason: "drained", Drained: true,
					Probers: []string{"agent-2"}, ProbesReady: 1},
			},
			SnapshotVersion: 12, AgentsAcked: 11, AgentsTotal: 12,
			RecentEvents: []*hangarv1.Event{pastEvents[2]},
		},
	}
}

func (f *fakeAdmin) group(name string) (*hangarv1.GroupStatus, error) {
	for _, g := range groups() {
		if g.GetId() == name {
			return g, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "group %q not found (groups: my-mcp-group, search)", name)
}

func (f *fakeAdmin) ListGroups(context.Context, *hangarv1.ListGroupsRequest) (*hangarv1.ListGroupsResponse, error) {
	return &hangarv1.ListGroupsResponse{Groups: groups(), SnapshotVersion: 12}, nil
}

func (f *fakeAdmin) GetGroupStatus(_ context.Context, req *hangarv1.GetGroupStatusRequest) (*hangarv1.GroupStatus, error) {
	g, err := f.group(req.GetGroup())
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g.SnapshotVersion += uint64(f.groupCalls)
	f.groupCalls++
	return g, nil
}

var servers = []*hangarv1.ServerStatus{
	{Id: "my-mcp", Mode: "http", Endpoint: "https://mcp.internal:8443/mcp", State: hangarv1.MemberState_MEMBER_STATE_READY,
		Groups: []string{"my-mcp-group"}, Probers: []string{"agent-1", "agent-2"}, ProbesReady: 2,
		OkPerSecond: 42.5, ErrorPerSecond: 0.1, P50Seconds: 0.0031, P99Seconds: 0.0402,
		Calls: map[string]uint64{"ok": 2550, "timeout": 4, "tool_error": 2}},
	{Id: "my-mcp-old", Mode: "stdio", Endpoint: "mcp-old --stdio", State: hangarv1.MemberState_MEMBER_STATE_DEGRADED, Reason: "probers",
		Groups: []string{"my-mcp-group"}, Probers: []string{"agent-1", "agent-3"}, ProbesDegraded: 2},
	{Id: "search-a", Mode: "http", Endpoint: "http://10.0.0.7:9000/mcp", State: hangarv1.MemberState_MEMBER_STATE_DEAD,
		Reason: "traffic_quorum", Groups: []string{"search"}, Probers: []string{"agent-1"}, ProbesDegraded: 1,
		ErrorPerSecond: 7.25, P50Seconds: 0.25, P99Seconds: 1.5},
}

func (f *fakeAdmin) ListServers(context.Context, *hangarv1.ListServersRequest) (*hangarv1.ListServersResponse, error) {
	return &hangarv1.ListServersResponse{Servers: servers}, nil
}

func (f *fakeAdmin) GetServerStatus(_ context.Context, req *hangarv1.GetServerStatusRequest) (*hangarv1.ServerStatus, error) {
	for _, s := range servers {
		if s.GetId() == req.GetServer() {
			return s, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "server %q not found", req.GetServer())
}

func (f *fakeAdmin) ListAgents(context.Context, *hangarv1.ListAgentsRequest) (*hangarv1.ListAgentsResponse, error) {
	return &hangarv1.ListAgentsResponse{SnapshotVersion: 12, Agents: []*hangarv1.AgentStatus{
		{Id: "agent-1", Host: "web-1", Version: "v0.4.0", Labels: map[string]string{"zone": "a", "app": "web"}, Replica: "cp-1",
			AckedVersion: 12, Connected: at(-86400), LastReport: at(-1), Probes: []string{"my-mcp", "my-mcp-old", "search-a"},
			ConfigSource: "control-plane", Sync: "SYNCED"},
		{Id: "agent-2", Host: "web-2", Version: "v0.4.0", Replica: "cp-2", AckedVersion: 11, Connected: at(-3600), LastReport: at(-2),
			Probes: []string{"my-mcp"}, ConfigSource: "control-plane", Sync: "NACKED", NackedVersion: 12,
			NackError: "fleet configuration of snapshot 12: config.yaml:4: unknown key"},
		{Id: "agent-3", Host: "batch-1", Version: "v0.3.9", Replica: "cp-1", Connected: at(-5), ConfigSource: "control-plane", Sync: "STALE"},
		{Id: "agent-4", Host: "lab-1", Version: "v0.4.0", Replica: "cp-2", AckedVersion: 12, Connected: at(-60), LastReport: at(-3),
			ConfigSource: "local", Sync: "LOCAL"},
	}}, nil
}

const storedConfig = "groups:\n  my-mcp-group:\n    strategy: priority\n"

func (f *fakeAdmin) GetConfig(context.Context, *hangarv1.GetConfigRequest) (*hangarv1.GetConfigResponse, error) {
	return &hangarv1.GetConfigResponse{Config: []byte(storedConfig), Revision: 7}, nil
}

func (f *fakeAdmin) ApplyConfig(_ context.Context, req *hangarv1.ApplyConfigRequest) (*hangarv1.ApplyConfigResponse, error) {
	f.mu.Lock()
	f.applied = append(f.applied, proto.Clone(req).(*hangarv1.ApplyConfigRequest))
	f.mu.Unlock()
	if i := strings.Index(string(req.GetConfig()), "fastest"); i >= 0 {
		line := strings.Count(string(req.GetConfig()[:i]), "\n") + 1
		return nil, status.Errorf(codes.InvalidArgument, `%s:%d: groups.my-mcp-group.strategy: unknown strategy "fastest" (want priority, round_robin or weighted)`,
			req.GetName(), line)
	}
	resp := &hangarv1.ApplyConfigResponse{
		Diff:    "--- stored (revision 7)\n+++ " + req.GetName() + "\n@@ -3 +3 @@\n-    strategy: priority\n+    strategy: round_robin\n",
		Changed: true, Revision: 8,
	}
	if strings.Contains(string(req.GetConfig()), "# unchanged") { // the stored file, byte for byte
		resp = &hangarv1.ApplyConfigResponse{Revision: 7}
	}
	if req.GetDryRun() {
		resp.Revision = 7
	}
	return resp, nil
}

func matches(e *hangarv1.Event, req *hangarv1.WatchEventsRequest) bool {
	return e.GetSeq() > req.GetAfterSeq() &&
		(req.GetGroup() == "" || e.GetGroup() == req.GetGroup()) &&
		(req.GetServer() == "" || e.GetServer() == req.GetServer())
}

// WatchEvents sends the past events after after_seq, oldest first, at most
// limit; then, if follow, f.live and waits for the client to go.
func (f *fakeAdmin) WatchEvents(req *hangarv1.WatchEventsRequest, stream grpc.ServerStreamingServer[hangarv1.Event]) error {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	sent := 0
	for _, e := range pastEvents {
		if matches(e, req) && sent < limit {
			if err := stream.Send(e); err != nil {
				return err
			}
			sent++
		}
	}
	if !req.GetFollow() {
		return nil
	}
	f.mu.Lock()
	live := f.live
	f.follows = append(f.follows, proto.Clone(req).(*hangarv1.WatchEventsRequest))
	f.mu.Unlock()
	for _, e := range live {
		if matches(e, req) {
			if err := stream.Send(e); err != nil {
				return err
			}
		}
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeAdmin) member(group, member string) error {
	g, err := f.group(group)
	if err != nil {
		return err
	}
	for _, m := range g.GetMembers() {
		if m.GetId() == member {
			return nil
		}
	}
	return status.Errorf(codes.NotFound, "group %q has no member %q", group, member)
}

func (f *fakeAdmin) DrainMember(_ context.Context, req *hangarv1.DrainMemberRequest) (*hangarv1.DrainMemberResponse, error) {
	if err := f.member(req.GetGroup(), req.GetMember()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.drained = append(f.drained, req.GetGroup()+"/"+req.GetMember())
	f.mu.Unlock()
	return &hangarv1.DrainMemberResponse{}, nil
}

func (f *fakeAdmin) UndrainMember(_ context.Context, req *hangarv1.UndrainMemberRequest) (*hangarv1.UndrainMemberResponse, error) {
	return &hangarv1.UndrainMemberResponse{}, f.member(req.GetGroup(), req.GetMember())
}

func (f *fakeAdmin) ResetBreaker(_ context.Context, req *hangarv1.ResetBreakerRequest) (*hangarv1.ResetBreakerResponse, error) {
	_, err := f.group(req.GetGroup())
	return &hangarv1.ResetBreakerResponse{}, err
}

func (f *fakeAdmin) GetClusterStatus(context.Context, *hangarv1.GetClusterStatusRequest) (*hangarv1.ClusterStatus, error) {
	return &hangarv1.ClusterStatus{
		Replicas: []*hangarv1.Replica{
			{Name: "cp-1", Address: "10.0.0.1:7400", Leader: true},
			{Name: "cp-2", Address: "10.0.0.2:7400"},
			{Name: "cp-3", Address: "10.0.0.3:7400"},
		},
		Leader: "cp-1",
		Etcd: []*hangarv1.EtcdEndpoint{
			{Endpoint: "https://10.0.0.1:2379", Healthy: true, Version: "3.7.3", DbSizeBytes: 25165824, Leader: true},
			{Endpoint: "https://10.0.0.2:2379", Healthy: true, Version: "3.7.3", DbSizeBytes: 25100288},
			{Endpoint: "https://10.0.0.3:2379", Error: "context deadline exceeded"},
		},
		SnapshotVersion: 12, Agents: 3,
	}, nil
}

// adminOnly are the methods that need admin rights (ApplyConfig unless
// dry_run is checked in the interceptor).
var adminOnly = map[string]bool{
	hangarv1.AdminService_DrainMember_FullMethodName:   true,
	hangarv1.AdminService_UndrainMember_FullMethodName: true,
	hangarv1.AdminService_ResetBreaker_FullMethodName:  true,
	hangarv1.AdminService_ApplyConfig_FullMethodName:   true,
}

// authorize refuses admin methods unless the caller sends adminToken.
func authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if ac, ok := req.(*hangarv1.ApplyConfigRequest); adminOnly[info.FullMethod] && !(ok && ac.GetDryRun()) {
		md, _ := metadata.FromIncomingContext(ctx)
		if auth := md.Get("authorization"); len(auth) != 1 || auth[0] != "Bearer "+adminToken {
			name := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
			return nil, status.Errorf(codes.PermissionDenied, "%s needs admin rights; this caller may only read", name)
		}
	}
	return handler(ctx, req)
}

// startFake serves a fakeAdmin on a loopback port until the test ends (or
// f.stop) and returns it with its address.
func startFake(t *testing.T, opts ...grpc.ServerOption) (*fakeAdmin, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{}
	srv := grpc.NewServer(append(opts, grpc.UnaryInterceptor(authorize))...)
	hangarv1.RegisterAdminServiceServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	f.stop = func() {
		srv.Stop()
		<-done
	}
	t.Cleanup(f.stop)
	return f, lis.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
