package server_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
)

// ttl is the replicas' etcd session TTL: how fast a dead leader is replaced.
const ttl = servertest.TTL

// The fleet of the failover recipe: my-mcp-group over my-mcp (priority 1)
// and my-mcp-backup (priority 2).
const (
	group   = servertest.Group
	primary = servertest.Primary
	backup  = servertest.Backup
)

var members = servertest.Members

// cluster is an embedded etcd holding the failover fleet, and the replicas
// started on it.
type cluster struct {
	*servertest.Etcd
	t *testing.T
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{Etcd: servertest.StartEtcd(t), t: t}
}

// startReplica starts a replica serving only the AgentService; it is
// stopped when the test ends.
func (c *cluster) startReplica(name string) *servertest.Replica {
	c.t.Helper()
	return c.StartReplica(name, servertest.ReplicaOptions{})
}

// leader returns the name of the replica that leads, "" if none does.
func (c *cluster) leader() string {
	c.t.Helper()
	name, err := c.Store.Leader(c.Ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return name
}

// settle waits until the leader has decided with exactly these agents
// connected and each of them that reads has received that decision.
func (c *cluster) settle(agents ...*servertest.Agent) uint64 {
	c.t.Helper()
	var want []string
	for _, a := range agents {
		want = append(want, a.ID)
	}
	slices.Sort(want)
	var version uint64
	servertest.Eventually(c.t, fmt.Sprintf("agents %v have the snapshot deciding for them", want), func() bool {
		rec, v := c.Record()
		var got []string
		for id := range rec.GetAssignments() {
			got = append(got, id)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return false
		}
		for _, a := range agents {
			if a.Reads() && a.Latest().GetVersion() != v {
				return false
			}
		}
		version = v
		return true
	})
	return version
}
