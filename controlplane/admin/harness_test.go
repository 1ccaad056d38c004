package admin

import (
	"context"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Every test stops the etcd node, replica, gRPC server and streams it
// starts, and waits for their goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The fleet of the failover recipe: my-mcp-group over my-mcp (priority 1)
// and my-mcp-backup (priority 2), breaker reset_timeout_s 30.
const (
	group   = servertest.Group
	primary = servertest.Primary
	backup  = servertest.Backup
)

// env is one replica named cp-1 on an embedded etcd holding the failover
// fleet, serving the agent and admin services on loopback.
type env struct {
	t       *testing.T
	etcd    *servertest.Etcd
	replica *servertest.Replica
	ctx     context.Context
	store   *store.Store // the test's own view of etcd
	addr    string
	conn    *grpc.ClientConn
	admin   hangarv1.AdminServiceClient
	fleet   []byte
	token   string // bearer token the simulated agents send; "" none
}

// newEnv starts the replica; authz nil serves without an Authorizer.
func newEnv(t *testing.T, authz *Authorizer) *env {
	t.Helper()
	etcd := servertest.StartEtcd(t)
	o := servertest.ReplicaOptions{Register: func(gs *grpc.Server, rep *server.Replica) {
		hangarv1.RegisterAdminServiceServer(gs, New(rep, Options{}))
	}}
	if authz != nil {
		o.Admit = AdmitAgent
		o.ServerOptions = []grpc.ServerOption{grpc.ChainUnaryInterceptor(authz.UnaryInterceptor()), grpc.ChainStreamInterceptor(authz.StreamInterceptor())}
	}
	r := etcd.StartReplica("cp-1", o)
	e := &env{t: t, etcd: etcd, replica: r, ctx: etcd.Ctx, store: etcd.Store, addr: r.Addr, conn: r.Conn,
		admin: hangarv1.NewAdminServiceClient(r.Conn), fleet: etcd.Fleet}
	servertest.Eventually(t, "cp-1 leads and wrote a snapshot", func() bool {
		_, v, err := e.store.Snapshot(e.ctx)
		return err == nil && v > 0
	})
	return e
}

// as returns a context carrying a bearer token.
func (e *env) as(token string) context.Context {
	return metadata.AppendToOutgoingContext(e.ctx, "authorization", "Bearer "+token)
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

// connect opens agent id's stream in zone z1, serving both members, with
// e.token; its receiver ACKs each snapshot if ack.
func (e *env) connect(id string, ack bool) *servertest.Agent {
	e.t.Helper()
	return e.replica.Connect(e.t, id, servertest.AgentOptions{
		NoAck: !ack, Token: e.token, Labels: map[string]string{"zone": "z1"}})
}
