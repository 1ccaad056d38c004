package server_test

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// A path ejection by the agent on the leader's replica is confirmed by the
// only other agent, connected to a follower: the request and its answer
// cross replicas through etcd. A failed confirmation takes the member out
// of global rotation; a passing one leaves it in.
func TestConfirmAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"failed", false}, {"passed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1 := c.startReplica("cp-1")
			servertest.Eventually(t, "cp-1 leads", func() bool { return c.leader() == "cp-1" })
			r2 := c.startReplica("cp-2")
			var asked atomic.Int32
			a := r1.Connect(t, "agent-a", servertest.AgentOptions{})
			b := r2.Connect(t, "agent-b", servertest.AgentOptions{Confirm: func(p *hangarv1.ConfirmProbe) *hangarv1.ConfirmResult {
				if p.GetMember() == primary {
					asked.Add(1)
				}
				if tc.ok {
					return &hangarv1.ConfirmResult{Ok: true}
				}
				return &hangarv1.ConfirmResult{Error: "connection refused"}
			}})
			c.settle(a, b)

			// B calls the primary without ejecting it, and the leader has
			// seen that: A's ejection is 1 of 2 callers, not a quorum.
			b.Report(servertest.Called(primary), servertest.Called(backup))
			c.decidedWith(r2, "barrier-1")
			marks := []int{a.Mark(), b.Mark()}
			a.Report(servertest.Called(primary, group), servertest.Called(backup))

			if !tc.ok {
				for i, ag := range []*servertest.Agent{a, b} {
					ag.Await("my-mcp out of rotation on B's failed confirmation", marks[i], servertest.Rotation(backup))
				}
				c.expectEvent("member_out_of_rotation", primary, "confirmed")
				return
			}
			servertest.Eventually(t, "agent-b asked to confirm my-mcp", func() bool { return asked.Load() > 0 })
			servertest.Eventually(t, "agent-b's answer relayed to etcd", func() bool {
				keys, err := c.Store.Confirms(c.Ctx)
				if err != nil {
					t.Fatal(err)
				}
				for k := range keys {
					if strings.HasPrefix(k, "res/") {
						return true
					}
				}
				return false
			})
			rec := c.decidedWith(r1, "barrier-2")
			if g := servertest.GroupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
				t.Fatalf("a passed confirmation changed the rotation to %v; want %v", g.GetRotation(), members)
			}
			for _, ag := range []*servertest.Agent{a, b} {
				if !servertest.Rotation(primary, backup)(ag.Latest()) {
					t.Errorf("%s: rotation %v, want both members", ag.ID, servertest.GroupState(ag.Latest(), group).GetRotation())
				}
			}
		})
	}
}

// decidedWith connects an agent serving nothing, named name, to r and
// returns the first decision that counts it: the leader decided after
// everything r had received before.
func (c *cluster) decidedWith(r *servertest.Replica, name string) *hangarv1.SnapshotRecord {
	c.t.Helper()
	r.Connect(c.t, name, servertest.AgentOptions{Servers: []string{}})
	var rec *hangarv1.SnapshotRecord
	servertest.Eventually(c.t, fmt.Sprintf("a decision that counts %s", name), func() bool {
		rec, _ = c.Record()
		_, ok := rec.GetAssignments()[name]
		return ok
	})
	return rec
}
