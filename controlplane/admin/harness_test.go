package admin

import (
	"context"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Every test stops the etcd node, replica, gRPC server and streams it
// starts, and waits for their goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait: generous, since a wait that times out is a
// failure, not a measurement.
const waitFor = 15 * time.Second

// The fleet of the failover recipe: my-mcp-group over my-mcp (priority 1)
// and my-mcp-backup (priority 2), breaker reset_timeout_s 30.
const (
	fleetFile = "../../dataplane/config/testdata/recipes/04-failover.yaml"
	group     = "my-mcp-group"
	primary   = "my-mcp"
	backup    = "my-mcp-backup"
)

// env is one replica named cp-1 on an embedded etcd holding the failover
// fleet, serving the agent and admin services on loopback.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  *store.Store // the test's own view of etcd
	addr   string
	conn   *grpc.ClientConn
	admin  hangarv1.AdminServiceClient
	fleet  []byte
	token  string // bearer token the simulated agents send; "" none
	cancel context.CancelFunc
}

// newEnv starts the replica; authz nil serves without an Authorizer.
func newEnv(t *testing.T, authz *Authorizer) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitFor)
	t.Cleanup(cancel)
	node, err := etcdnode.Start(ctx, etcdnode.Config{Dir: t.TempDir(), Fast: true})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { node.Close() })
	e := &env{t: t, ctx: ctx}
	e.store = store.New(client(t, node), "")
	if e.fleet, err = os.ReadFile(fleetFile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.PutConfig(ctx, e.fleet); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	var opts []grpc.ServerOption
	if authz != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(authz.UnaryInterceptor()), grpc.ChainStreamInterceptor(authz.StreamInterceptor()))
	}
	gs := grpc.NewServer(opts...)
	rep := server.NewReplica(server.Options{
		Name: "cp-1", Addr: e.addr, ElectionTTL: time.Second,
		Store: store.New(client(t, node), ""), Metrics: server.NewMetrics(prometheus.NewRegistry()),
	})
	hangarv1.RegisterAgentServiceServer(gs, rep.AgentService())
	hangarv1.RegisterAdminServiceServer(gs, New(rep, Options{}))
	rctx, stop := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	go func() { ran <- rep.Run(rctx) }()
	// Cleanups run last-in first-out: the client conn and streams close
	// first, then the server and replica, then the clients, then etcd.
	t.Cleanup(func() {
		gs.Stop()
		<-served
		stop()
		if err := <-ran; err != nil {
			t.Errorf("replica Run: %v", err)
		}
	})
	if e.conn, err = grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close() })
	e.admin = hangarv1.NewAdminServiceClient(e.conn)
	eventually(t, "cp-1 leads and wrote a snapshot", func() bool {
		_, v, err := e.store.Snapshot(ctx)
		return err == nil && v > 0
	})
	return e
}

func client(t *testing.T, node *etcdnode.Node) *clientv3.Client {
	t.Helper()
	cli, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// as returns a context carrying a bearer token.
func (e *env) as(token string) context.Context {
	return metadata.AppendToOutgoingContext(e.ctx, "authorization", "Bearer "+token)
}

// record reads the routing snapshot the leader last wrote.
func (e *env) record() (*hangarv1.SnapshotRecord, uint64) {
	e.t.Helper()
	data, rev, err := e.store.Snapshot(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var rec hangarv1.SnapshotRecord
	if err := proto.Unmarshal(data, &rec); err != nil {
		e.t.Fatal(err)
	}
	return &rec, uint64(rev)
}

// events reads the whole event log.
func (e *env) events() []store.Event {
	e.t.Helper()
	evs, err := e.store.Events(e.ctx, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// eventsOf returns the logged events of one kind.
func (e *env) eventsOf(kind string) []store.Event {
	var out []store.Event
	for _, ev := range e.events() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agent is a simulated hangar-agent: a raw Connect stream whose receiver
// records the snapshots and, unless noAck, ACKs each.
type agent struct {
	t      *testing.T
	id     string
	stream hangarv1.AgentService_ConnectClient
	cancel context.CancelFunc
	done   chan struct{}

	sendMu sync.Mutex
	seq    uint64

	mu    sync.Mutex
	snaps []*hangarv1.Snapshot
	err   error
}

// connect opens agent id's stream, serving both members, and sends Hello.
func (e *env) connect(id string, ack bool) *agent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if e.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token)
	}
	stream, err := hangarv1.NewAgentServiceClient(e.conn).Connect(ctx)
	if err != nil {
		cancel()
		e.t.Fatalf("connect %s: %v", id, err)
	}
	a := &agent{t: e.t, id: id, stream: stream, cancel: cancel, done: make(chan struct{})}
	e.t.Cleanup(func() { a.cancel(); <-a.done })
	hello := &hangarv1.Hello{AgentId: id, Host: "host-" + id, Version: "test", Servers: []string{primary, backup},
		Labels:       map[string]string{"zone": "z1"},
		Capabilities: 1<<hangarv1.Capability_CAPABILITY_SNAPSHOTS | 1<<hangarv1.Capability_CAPABILITY_ASSIGNMENTS}
	if err := a.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		e.t.Fatalf("%s: send Hello: %v", id, err)
	}
	go a.receive(ack)
	return a
}

func (a *agent) receive(ack bool) {
	defer close(a.done)
	for {
		m, err := a.stream.Recv()
		if err != nil {
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		if s := m.GetSnapshot(); s != nil {
			a.mu.Lock()
			a.snaps = append(a.snaps, s)
			a.mu.Unlock()
			if ack {
				_ = a.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: s.GetVersion(), Nonce: s.GetNonce()}}})
			}
		}
	}
}

func (a *agent) send(m *hangarv1.AgentMessage) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.stream.Send(m)
}

// report sends a report: a heartbeat (whose calls count in the minute
// window) or a change report.
func (a *agent) report(heartbeat bool, groups []*hangarv1.GroupReport, members ...*hangarv1.MemberReport) {
	a.t.Helper()
	a.sendMu.Lock()
	a.seq++
	r := &hangarv1.Report{Seq: a.seq, At: timestamppb.Now(), Heartbeat: heartbeat, Members: members, Groups: groups}
	err := a.stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: r}})
	a.sendMu.Unlock()
	if err != nil {
		a.t.Fatalf("%s: send Report: %v", a.id, err)
	}
}

// mark is a position in the agent's received snapshots.
func (a *agent) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.snaps)
}

// await waits for a snapshot received after mark that satisfies ok and
// returns it.
func (a *agent) await(what string, mark int, ok func(*hangarv1.Snapshot) bool) *hangarv1.Snapshot {
	a.t.Helper()
	var got *hangarv1.Snapshot
	eventually(a.t, a.id+": "+what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range a.snaps[min(mark, len(a.snaps)):] {
			if ok(s) {
				got = s
				return true
			}
		}
		if a.err != nil {
			a.t.Fatalf("%s: stream ended while waiting for %s: %v", a.id, what, a.err)
		}
		return false
	})
	return got
}

// member is one member as an agent reports it: probed and READY, called
// just now if calls is non-nil.
func member(id string, calls map[string]uint64, buckets []uint64, ejectedIn ...string) *hangarv1.MemberReport {
	m := &hangarv1.MemberReport{Member: id, State: hangarv1.MemberState_MEMBER_STATE_READY, Probed: true,
		EjectedIn: ejectedIn, Calls: calls, LatencyBuckets: buckets}
	if calls != nil || len(ejectedIn) > 0 {
		m.LastCall = timestamppb.Now()
	}
	return m
}

// groupReport is the agent's breaker on the failover group, called just now.
func groupReport(b hangarv1.BreakerState, failures uint32) []*hangarv1.GroupReport {
	return []*hangarv1.GroupReport{{Group: group, Breaker: b, ConsecutiveFailures: failures, LastCall: timestamppb.Now()}}
}

// groupState is the group's state in snap, nil if absent.
func groupState(snap *hangarv1.Snapshot) *hangarv1.GroupState {
	for _, g := range snap.GetGroups() {
		if g.GetId() == group {
			return g
		}
	}
	return nil
}

// rotation is a predicate: the group's rotation is exactly want.
func rotation(want ...string) func(*hangarv1.Snapshot) bool {
	return func(s *hangarv1.Snapshot) bool {
		g := groupState(s)
		return g != nil && slices.Equal(g.GetRotation(), want)
	}
}
