package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/dataplane/controlclient"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// groupsFleet is a fleet file of two groups, each with two mcp-math
// members probed every second; with dropA2, group-a loses member a2.
func groupsFleet(urls map[string]string, dropA2 bool) string {
	var b strings.Builder
	b.WriteString("mcp_servers:\n")
	for _, m := range []string{"a1", "a2", "b1", "b2"} {
		fmt.Fprintf(&b, "  %s:\n    mode: remote\n    endpoint: %s\n    health_check_interval_s: 1\n    max_consecutive_failures: 1\n", m, urls[m])
	}
	aMembers := "[{id: a1, priority: 1}, {id: a2, priority: 2}]"
	if dropA2 {
		aMembers = "[{id: a1, priority: 1}]"
	}
	fmt.Fprintf(&b, "  group-a:\n    mode: group\n    strategy: priority\n    members: %s\n", aMembers)
	b.WriteString("  group-b:\n    mode: group\n    strategy: priority\n    members: [{id: b1, priority: 1}, {id: b2, priority: 2}]\n")
	return b.String()
}

// heldState reads the full state an agent keeps in its state dir.
func heldState(t *testing.T, dir string) *hangarv1.Snapshot {
	t.Helper()
	s, err := controlclient.LoadState(dir, nil)
	if err != nil || len(s) == 0 {
		t.Fatalf("state dir %s: %v, %d snapshots", dir, err, len(s))
	}
	return s[0]
}

// lastState is the last snapshot an agent saved in dir, nil if none.
func lastState(dir string) *hangarv1.Snapshot {
	s, err := controlclient.LoadState(dir, nil)
	if err != nil || len(s) == 0 {
		return nil
	}
	return s[0]
}

func heldGroup(s *hangarv1.Snapshot, id string) *hangarv1.GroupState {
	for _, g := range s.GetGroups() {
		if g.GetId() == id {
			return g
		}
	}
	return nil
}

func heldGroupIDs(s *hangarv1.Snapshot) []string {
	var out []string
	for _, g := range s.GetGroups() {
		out = append(out, g.GetId())
	}
	slices.Sort(out)
	return out
}

// TestCPAgentsGetTheirGroupsOnly: two agents take the fleet from the
// control plane, one serving group-a, the other group-b. A member of
// group-b dies, then the fleet file changes group-a: each agent's routing
// state changes for its own group, and neither ever receives the other's.
func TestCPAgentsGetTheirGroupsOnly(t *testing.T) {
	skipShort(t)
	urls := map[string]string{}
	maths := map[string]*Math{}
	for _, m := range []string{"a1", "a2", "b1", "b2"} {
		maths[m] = startMath(t, m, "")
		urls[m] = maths[m].URL()
	}
	etcd := cpStartEtcd(t)
	fleet := writeConfig(t, groupsFleet(urls, false))
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	agentA := cpStartAgent(t, "agent-a", []string{r.GRPC}, dirA, "--groups", "group-a")
	agentB := cpStartAgent(t, "agent-b", []string{r.GRPC}, dirB, "--groups", "group-b")
	rotation := func(dir, group string) []string {
		return heldGroup(lastState(dir), group).GetRotation()
	}
	eventually(t, 20*time.Second, "both agents hold their group with both members in rotation", func() bool {
		return slices.Equal(rotation(dirA, "group-a"), []string{"a1", "a2"}) && slices.Equal(rotation(dirB, "group-b"), []string{"b1", "b2"})
	})
	hashBefore := heldState(t, dirA).GetConfigHash()

	// A member of group-b dies: agent-b's snapshot takes it out of rotation.
	maths["b1"].Kill()
	eventually(t, 20*time.Second, "agent-b holds group-b without b1", func() bool {
		return slices.Equal(rotation(dirB, "group-b"), []string{"b2"})
	})

	// The fleet file changes group-a: agent-a gets the change, agent-b the
	// new file (its hash changed) but no routing state of group-a.
	res := runCtl(t, r.GRPC, "config", "apply", "-f", writeConfig(t, groupsFleet(urls, true)))
	if res.code != 0 {
		t.Fatalf("hangarctl config apply: %s", res)
	}
	eventually(t, 20*time.Second, "agent-a holds group-a without a2", func() bool {
		return slices.Equal(rotation(dirA, "group-a"), []string{"a1"})
	})
	eventually(t, 20*time.Second, "agent-b holds the new fleet file", func() bool {
		s := lastState(dirB)
		return s.GetConfigHash() != hashBefore && s.GetConfigHash() == heldState(t, dirA).GetConfigHash()
	})

	for _, tc := range []struct {
		name, dir, own, other string
		agent                 *Agent
	}{
		{"agent-a", dirA, "group-a", "group-b", agentA},
		{"agent-b", dirB, "group-b", "group-a", agentB},
	} {
		if got := heldGroupIDs(heldState(t, tc.dir)); !slices.Equal(got, []string{tc.own}) {
			t.Errorf("%s holds the routing state of %v, want %s only", tc.name, got, tc.own)
		}
		// Every snapshot it applied set its own group's state or none.
		applied := cpMatches(tc.agent.proc.Output(), `msg=snapshot_applied .*groups=(\S*)`)
		if len(applied) < 2 {
			t.Errorf("%s applied %d snapshots, want at least the first and the change: %v", tc.name, len(applied), applied)
		}
		for _, groups := range applied {
			if strings.Contains(groups, tc.other) {
				t.Errorf("%s applied a snapshot carrying %s: groups=%s", tc.name, tc.other, groups)
			}
		}
	}
}
