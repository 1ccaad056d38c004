package servertest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// ReplicaOptions change how a replica is served. The zero value serves
// only the AgentService, without interceptors.
type ReplicaOptions struct {
	// ServerOptions are passed to grpc.NewServer.
	ServerOptions []grpc.ServerOption
	// Register, if non-nil, registers further services (an AdminService)
	// on the replica's gRPC server before it serves.
	Register func(*grpc.Server, *server.Replica)
	// Admit is server.Options.Admit.
	Admit func(ctx context.Context, agentID string) error
}

// Replica is one control-plane replica with its own etcd client and gRPC
// server on loopback, and a client connection its agents share.
type Replica struct {
	Name string
	Addr string
	Reg  *prometheus.Registry // the replica's metrics
	Conn *grpc.ClientConn     // to Addr; closed when the test ends

	cli    *clientv3.Client
	gs     *grpc.Server
	cancel context.CancelFunc
	runErr chan error // server.Replica.Run's result
	served chan error // grpc.Server.Serve's result

	stopOnce sync.Once
}

// StartReplica starts a replica named name and waits until it has
// registered in etcd; it is stopped when the test ends, and a Run error
// fails the test.
func (e *Etcd) StartReplica(name string, o ReplicaOptions) *Replica {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Replica{
		Name: name, Reg: prometheus.NewRegistry(), Addr: ln.Addr().String(),
		cli: client(t, e.Node), gs: grpc.NewServer(o.ServerOptions...),
		runErr: make(chan error, 1), served: make(chan error, 1),
	}
	rep := server.NewReplica(server.Options{
		Name: name, Addr: r.Addr, ElectionTTL: TTL,
		Store: store.New(r.cli, ""), Metrics: server.NewMetrics(r.Reg), Admit: o.Admit,
	})
	hangarv1.RegisterAgentServiceServer(r.gs, rep.AgentService())
	if o.Register != nil {
		o.Register(r.gs, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.served <- r.gs.Serve(ln) }()
	go func() { r.runErr <- rep.Run(ctx) }()
	// Cleanups run last-in first-out: the agents' streams end first, then
	// the client connection, then the server and replica, then etcd.
	t.Cleanup(func() {
		if r.Conn != nil {
			r.Conn.Close()
		}
		if err := r.Stop(); err != nil {
			t.Errorf("replica %s: Run: %v", name, err)
		}
	})
	Eventually(t, name+" registered", func() bool {
		rs, err := e.Store.Replicas(e.Ctx)
		return err == nil && rs[name] == r.Addr
	})
	r.Conn, err = grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Stop ends the replica as a clean shutdown does: its gRPC server stops,
// Run returns (resigning and closing its etcd session). It returns Run's
// error; calls after the first, or after Crash, do nothing.
func (r *Replica) Stop() error {
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

// Crash ends the replica as a dead process would: its connections drop and
// its etcd session is never revoked, so its lease (and leadership) lasts
// until the TTL runs out. It returns an error if Run did not fail.
func (r *Replica) Crash() error {
	var err error
	r.stopOnce.Do(func() {
		r.gs.Stop()
		<-r.served
		r.cli.Close() // the session's keep-alive stops; Run ends
		err = <-r.runErr
		r.cancel()
	})
	if err == nil {
		return errors.New("run returned nil after its etcd client closed; want an error")
	}
	return nil
}

// Metric sums a metric's samples on the replica's registry: the value of a
// counter or gauge, the observation count of a histogram; 0 if absent.
func (r *Replica) Metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.Reg.Gather()
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
