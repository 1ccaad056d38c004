package server_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// A second agent process with the id of a connected one is refused, naming
// the connected one, and changes nothing; the same process reconnecting
// replaces its old stream.
func TestDuplicateAgentIDRefused(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	first := r.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-a"})
	v := c.settle(first)

	second := r.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-b"})
	servertest.Eventually(t, "the second stream to be refused", func() bool { return second.StreamErr() != nil })
	err := second.StreamErr()
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(msg, `agent id "agent-1" is already connected from 127.0.0.1:`) ||
		!strings.Contains(msg, "connected since") || !strings.Contains(msg, "--agent-id") {
		t.Errorf("second stream ended with %v; want AlreadyExists naming the connected agent's address and time", err)
	}
	if err := first.StreamErr(); err != nil {
		t.Errorf("the first agent's stream ended: %v", err)
	}
	// Nothing flaps: the barrier decision still has version v's content.
	if n := r.Metric(t, mConnected); n != 1 {
		t.Errorf("%s = %v, want 1", mConnected, n)
	}
	if _, now := c.Record(); now != v {
		t.Errorf("snapshot version %d after the refused stream, want %d (unchanged)", now, v)
	}

	again := r.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-a"})
	servertest.Eventually(t, "the reconnect to replace the old stream", func() bool { return first.StreamErr() != nil })
	again.Await("a snapshot on the new stream", 0, func(*hangarv1.Snapshot) bool { return true })
}

// An agent running a local fleet file that differs from the stored one is
// LOCAL: its reports do not count, so two such agents ejecting a member
// do not take it out of rotation.
func TestLocalAgentsDoNotCount(t *testing.T) {
	c := newCluster(t)
	r := c.startReplica("cp-1")
	local := servertest.AgentOptions{ConfigSource: server.ConfigSourceLocal, ConfigSHA256: strings.Repeat("0", 64)}
	agents := []*servertest.Agent{r.Connect(t, "local-1", local), r.Connect(t, "local-2", local), r.Connect(t, "agent-3", servertest.AgentOptions{})}
	c.settle(agents[2]) // LOCAL agents get no assignment: they are not counted

	agents[0].Report(servertest.Called(primary, group), servertest.Called(backup))
	agents[1].Report(servertest.Called(primary, group), servertest.Called(backup))
	agents[2].Report(servertest.Called(primary), servertest.Called(backup))
	rec := c.decidedAfterReports(r, 3)
	if g := servertest.GroupState(rec.GetSnapshot(), group); !slices.Equal(g.GetRotation(), members) {
		t.Fatalf("2 LOCAL agents ejecting changed the rotation to %v; want %v", g.GetRotation(), members)
	}
}

// A second agent process with the id of an agent connected to another
// replica is refused too, naming that replica; the first stays connected and
// the snapshot does not change. The same process moving to the other
// replica is a reconnect, and is admitted.
func TestDuplicateAgentIDRefusedAcrossReplicas(t *testing.T) {
	c := newCluster(t)
	r1, r2 := c.startReplica("cp-1"), c.startReplica("cp-2")
	first := r1.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-a"})
	v := c.settle(first)
	servertest.Eventually(t, "cp-1 to publish agent-1 in etcd", func() bool { return c.publishedOn("agent-1", "cp-1") })

	second := r2.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-b"})
	servertest.Eventually(t, "the second stream to be refused", func() bool { return second.StreamErr() != nil })
	err := second.StreamErr()
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(msg, `agent id "agent-1" is already connected to replica "cp-1" from 127.0.0.1:`) ||
		!strings.Contains(msg, "connected since") || !strings.Contains(msg, "--agent-id") {
		t.Errorf("second stream ended with %v; want AlreadyExists naming replica cp-1, the agent's address and time", err)
	}
	if err := first.StreamErr(); err != nil {
		t.Errorf("the first agent's stream ended: %v", err)
	}
	if n := r2.Metric(t, mConnected); n != 0 {
		t.Errorf("cp-2 %s = %v, want 0", mConnected, n)
	}
	if _, now := c.Record(); now != v {
		t.Errorf("snapshot version %d after the refused stream, want %d (unchanged)", now, v)
	}

	moved := r2.Connect(t, "agent-1", servertest.AgentOptions{Instance: "process-a"})
	moved.Await("a snapshot on cp-2 for the same process", 0, func(*hangarv1.Snapshot) bool { return true })
	if err := moved.StreamErr(); err != nil {
		t.Errorf("the same process reconnecting on cp-2 was refused: %v", err)
	}
}

// publishedOn reports whether replica's reports in etcd list agent id.
func (c *cluster) publishedOn(id, replica string) bool {
	c.t.Helper()
	reports, err := c.Store.Reports(c.Ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	for key, data := range reports {
		var rr hangarv1.ReplicaReport
		if !strings.HasPrefix(key, replica+"#") || proto.Unmarshal(data, &rr) != nil {
			continue
		}
		for _, a := range rr.GetAgents() {
			if a.GetHello().GetAgentId() == id {
				return true
			}
		}
	}
	return false
}
