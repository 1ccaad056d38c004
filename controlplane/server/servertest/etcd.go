package servertest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// WaitFor bounds every wait: generous, since a wait that times out is a
// failure, not a measurement.
const WaitFor = 15 * time.Second

// TTL is the replicas' etcd session TTL: how fast a dead leader is replaced.
const TTL = time.Second

// The fleet of the failover recipe, which StartEtcd stores: Group over
// Primary (priority 1) and Backup (priority 2), breaker reset_timeout_s 30.
const (
	Group   = "my-mcp-group"
	Primary = "my-mcp"
	Backup  = "my-mcp-backup"
)

// Members are the failover group's members, in priority order. Callers
// must not modify it.
var Members = []string{Primary, Backup}

// fleetFile is the failover recipe, relative to this package's directory.
const fleetFile = "../../../internal/fleetfile/testdata/recipes/04-failover.yaml"

// Etcd is an embedded etcd node holding the failover fleet, with the
// test's own client on it, as an operator would have. Everything it starts
// is stopped when the test ends.
type Etcd struct {
	t     *testing.T
	Node  *etcdnode.Node
	Store *store.Store    // the test's own view of etcd
	Ctx   context.Context // ends when the test does, or after 4*WaitFor
	Fleet []byte          // the fleet configuration stored
}

// StartEtcd starts an etcd node in a temporary directory and stores the
// failover fleet in it.
func StartEtcd(t *testing.T) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*WaitFor)
	t.Cleanup(cancel)
	node, err := etcdnode.Start(ctx, etcdnode.Config{Dir: t.TempDir(), Fast: true})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { node.Close() })
	cli := client(t, node)
	t.Cleanup(func() { cli.Close() })
	e := &Etcd{t: t, Node: node, Store: store.New(cli, ""), Ctx: ctx}
	_, self, _, _ := runtime.Caller(0)
	if e.Fleet, err = os.ReadFile(filepath.Join(filepath.Dir(self), fleetFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Store.PutConfig(ctx, e.Fleet); err != nil {
		t.Fatal(err)
	}
	return e
}

// client returns a new client of node; the caller closes it.
func client(t *testing.T, node *etcdnode.Node) *clientv3.Client {
	t.Helper()
	cli, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// Record reads the routing snapshot the leader last wrote, and its version.
func (e *Etcd) Record() (*hangarv1.SnapshotRecord, uint64) {
	e.t.Helper()
	data, rev, err := e.Store.Snapshot(e.Ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var rec hangarv1.SnapshotRecord
	if err := proto.Unmarshal(data, &rec); err != nil {
		e.t.Fatal(err)
	}
	return &rec, uint64(rev)
}

// Eventually polls cond until it holds, failing the test after WaitFor.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, WaitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
