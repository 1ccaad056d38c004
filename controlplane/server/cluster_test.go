package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// waitFor bounds every wait: generous, since a wait that times out is a
// failure, not a measurement.
const waitFor = 15 * time.Second

// ttl is the replicas' etcd session TTL: how fast a dead leader is replaced.
const ttl = time.Second

// The fleet of the failover recipe: my-mcp-group over my-mcp (priority 1)
// and my-mcp-backup (priority 2).
const (
	fleetFile = "../../dataplane/config/testdata/recipes/04-failover.yaml"
	group     = "my-mcp-group"
	primary   = "my-mcp"
	backup    = "my-mcp-backup"
)

var members = []string{primary, backup}

// cluster is an embedded etcd holding the failover fleet, and the replicas
// started on it.
type cluster struct {
	t     *testing.T
	node  *etcdnode.Node
	store *store.Store // the test's own client, as an operator would have
	ctx   context.Context
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitFor)
	t.Cleanup(cancel)
	node, err := etcdnode.Start(ctx, etcdnode.Config{Dir: t.TempDir(), Fast: true})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { node.Close() })
	cli := etcdClient(t, node)
	t.Cleanup(func() { cli.Close() })
	c := &cluster{t: t, node: node, store: store.New(cli, ""), ctx: ctx}
	yaml, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.store.PutConfig(ctx, yaml); err != nil {
		t.Fatal(err)
	}
	return c
}

func etcdClient(t *testing.T, node *etcdnode.Node) *clientv3.Client {
	t.Helper()
	cli, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// replica is one control-plane replica with its own etcd client and gRPC
// server on loopback, and a client connection the agents on it share.
type replica struct {
	name string
	reg  *prometheus.Registry
	conn *grpc.ClientConn
	addr string

	cli    *clientv3.Client
	gs     *grpc.Server
	cancel context.CancelFunc
	runErr chan error // Replica.Run's result
	served chan error // grpc.Server.Serve's result

	stopOnce sync.Once
}

// startReplica starts a replica; it is stopped when the test ends.
func (c *cluster) startReplica(name string) *replica {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	r := &replica{
		name: name, reg: prometheus.NewRegistry(), addr: ln.Addr().String(),
		cli: etcdClient(c.t, c.node), gs: grpc.NewServer(),
		runErr: make(chan error, 1), served: make(chan error, 1),
	}
	rep := server.NewReplica(server.Options{
		Name: name, Addr: r.addr, ElectionTTL: ttl,
		Store: store.New(r.cli, ""), Metrics: server.NewMetrics(r.reg),
	})
	hangarv1.RegisterAgentServiceServer(r.gs, rep.AgentService())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.served <- r.gs.Serve(ln) }()
	go func() { r.runErr <- rep.Run(ctx) }()
	eventually(c.t, name+" registered", func() bool {
		rs, err := c.store.Replicas(c.ctx)
		return err == nil && rs[name] == r.addr
	})
	r.conn, err = grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		r.conn.Close()
		if err := r.stop(); err != nil {
			c.t.Errorf("replica %s: Run: %v", name, err)
		}
	})
	return r
}

// stop ends the replica as a clean shutdown does: its gRPC server stops,
// Run returns (resigning and closing its etcd session). It returns Run's
// error.
func (r *replica) stop() error {
	var err error
	r.stopOnce.Do(func() {
		r.gs.Stop()
		<-r.served
		r.cancel()
		err = <-r.runErr
		r.cli.Close()
	})
	return err
}

// crash ends the replica as a dead process would: its connections drop and
// its etcd session is never revoked, so its lease (and leadership) lasts
// until the TTL runs out.
func (r *replica) crash() error {
	var err error
	r.stopOnce.Do(func() {
		r.gs.Stop()
		<-r.served
		r.cli.Close() // the session's keep-alive stops; Run ends
		err = <-r.runErr
		r.cancel()
	})
	if err == nil {
		return errors.New("Run returned nil after its etcd client closed; want an error")
	}
	return nil
}

// metric sums a metric's samples on the replica's registry: the value of a
// counter or gauge, the observation count of a histogram; 0 if absent.
func (r *replica) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// record reads the routing snapshot the leader last wrote, and its version.
func (c *cluster) record() (*hangarv1.SnapshotRecord, uint64) {
	c.t.Helper()
	data, rev, err := c.store.Snapshot(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	var rec hangarv1.SnapshotRecord
	if err := proto.Unmarshal(data, &rec); err != nil {
		c.t.Fatal(err)
	}
	return &rec, uint64(rev)
}

// leader returns the name of the replica that leads, "" if none does.
func (c *cluster) leader() string {
	c.t.Helper()
	name, err := c.store.Leader(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return name
}

// settle waits until the leader has decided with exactly these agents
// connected and each of them that reads has received that decision.
func (c *cluster) settle(agents ...*agent) uint64 {
	c.t.Helper()
	var want []string
	for _, a := range agents {
		want = append(want, a.id)
	}
	slices.Sort(want)
	var version uint64
	eventually(c.t, fmt.Sprintf("agents %v have the snapshot deciding for them", want), func() bool {
		rec, v := c.record()
		var got []string
		for id := range rec.GetAssignments() {
			got = append(got, id)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return false
		}
		for _, a := range agents {
			if !a.noRead && a.latest().GetVersion() != v {
				return false
			}
		}
		version = v
		return true
	})
	return version
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

// agent is a simulated hangar-agent: a raw Connect stream. A goroutine
// records what the control plane sends and, unless told otherwise, ACKs
// every snapshot.
type agent struct {
	t      *testing.T
	id     string
	stream hangarv1.AgentService_ConnectClient
	cancel context.CancelFunc
	done   chan struct{} // closed when the receiver ends
	noRead bool          // never reads its stream

	sendMu sync.Mutex // one Send at a time: the receiver ACKs, the test reports
	seq    uint64

	mu     sync.Mutex
	snaps  []received
	assign *hangarv1.Assignment
	err    error // why the stream ended; nil while it is open
}

// received is a snapshot and when the agent read it.
type received struct {
	snap *hangarv1.Snapshot
	at   time.Time
}

// agentOpts change how a simulated agent behaves.
type agentOpts struct {
	conn    *grpc.ClientConn // nil: the replica's shared connection
	noAck   bool             // never ACK (the test ACKs or NACKs itself)
	noRead  bool             // never read the stream (a stuck agent)
	servers []string         // nil: both members
}

// connect opens agent id's stream to r and sends its Hello.
func (r *replica) connect(t *testing.T, id string, o agentOpts) *agent {
	t.Helper()
	if o.conn == nil {
		o.conn = r.conn
	}
	if o.servers == nil {
		o.servers = members
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := hangarv1.NewAgentServiceClient(o.conn).Connect(ctx)
	if err != nil {
		cancel()
		t.Fatalf("connect %s to %s: %v", id, r.name, err)
	}
	a := &agent{t: t, id: id, stream: stream, cancel: cancel, done: make(chan struct{}), noRead: o.noRead}
	t.Cleanup(a.close)
	hello := &hangarv1.Hello{AgentId: id, Host: "host-" + id, Version: "test", Servers: o.servers,
		Capabilities: 1<<hangarv1.Capability_CAPABILITY_SNAPSHOTS | 1<<hangarv1.Capability_CAPABILITY_ASSIGNMENTS}
	if err := a.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		t.Fatalf("%s: send Hello: %v", id, err)
	}
	if o.noRead {
		close(a.done)
	} else {
		go a.receive(!o.noAck)
	}
	return a
}

func (a *agent) close() {
	a.cancel()
	<-a.done
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
		now := time.Now()
		switch msg := m.GetMsg().(type) {
		case *hangarv1.ControlMessage_Snapshot:
			a.mu.Lock()
			a.snaps = append(a.snaps, received{msg.Snapshot, now})
			a.mu.Unlock()
			if ack {
				s := msg.Snapshot
				// An error here ends the stream, which Recv reports next.
				_ = a.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: s.GetVersion(), Nonce: s.GetNonce()}}})
			}
		case *hangarv1.ControlMessage_Assignment:
			a.mu.Lock()
			a.assign = msg.Assignment
			a.mu.Unlock()
		}
	}
}

func (a *agent) send(m *hangarv1.AgentMessage) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.stream.Send(m)
}

// report sends a change report (not a heartbeat) with these members.
func (a *agent) report(ms ...*hangarv1.MemberReport) {
	a.t.Helper()
	a.sendMu.Lock()
	a.seq++
	r := &hangarv1.Report{Seq: a.seq, At: timestamppb.Now(), Members: ms}
	err := a.stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: r}})
	a.sendMu.Unlock()
	if err != nil {
		a.t.Fatalf("%s: send Report: %v", a.id, err)
	}
}

// called is a member the agent sent a call just now, out of its local
// rotation in the groups listed.
func called(member string, ejectedIn ...string) *hangarv1.MemberReport {
	return &hangarv1.MemberReport{Member: member, State: hangarv1.MemberState_MEMBER_STATE_READY,
		EjectedIn: ejectedIn, LastCall: timestamppb.Now()}
}

// probed is a member the agent probes, with its verdict.
func probed(member string, state hangarv1.MemberState) *hangarv1.MemberReport {
	return &hangarv1.MemberReport{Member: member, State: state, Probed: true}
}

// mark is a position in the agent's received snapshots.
func (a *agent) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.snaps)
}

func (a *agent) snapshots() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.snaps)
}

// latest is the last snapshot received, nil if none.
func (a *agent) latest() *hangarv1.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.snaps) == 0 {
		return nil
	}
	return a.snaps[len(a.snaps)-1].snap
}

func (a *agent) assignment() *hangarv1.Assignment {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.assign
}

func (a *agent) streamErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// await waits for a snapshot received after mark that satisfies ok.
func (a *agent) await(what string, mark int, ok func(*hangarv1.Snapshot) bool) received {
	a.t.Helper()
	var got received
	eventually(a.t, a.id+": "+what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, r := range a.snaps[min(mark, len(a.snaps)):] {
			if ok(r.snap) {
				got = r
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

// groupState returns the group's state in snap, nil if absent.
func groupState(snap *hangarv1.Snapshot, id string) *hangarv1.GroupState {
	for _, g := range snap.GetGroups() {
		if g.GetId() == id {
			return g
		}
	}
	return nil
}

// rotation is a predicate: the group's rotation is exactly want.
func rotation(want ...string) func(*hangarv1.Snapshot) bool {
	return func(s *hangarv1.Snapshot) bool {
		g := groupState(s, group)
		return g != nil && slices.Equal(g.GetRotation(), want)
	}
}
