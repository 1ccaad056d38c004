package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// pair is the smallest fleet: one control-plane replica and agents A and B
// that take recipe 04 from it.
type pair struct {
	primary, backup *Math
	replica         *cpReplica
	agents          [2]*Agent
	sessions        [2]*mcp.ClientSession
}

func startPair(t *testing.T) *pair {
	t.Helper()
	skipShort(t)
	p := &pair{primary: startMath(t, primary, ""), backup: startMath(t, backup, "")}
	etcd := cpStartEtcd(t)
	fleet := writeConfig(t, cpRecipe04(t, p.primary.URL(), p.backup.URL()))
	p.replica = cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet, "--election-ttl", cpTTL.String())
	eventually(t, 10*time.Second, "a leader", p.replica.IsLeader)
	for i, id := range cpAgentIDs[:2] {
		p.agents[i] = cpStartAgent(t, id, []string{p.replica.GRPC}, filepath.Join(t.TempDir(), id))
		p.sessions[i] = p.agents[i].Connect()
	}
	for i := range p.agents {
		eventually(t, 20*time.Second, cpAgentIDs[i]+" has both members in rotation", func() bool {
			g := groupDetails(t, p.sessions[i])
			return g.member(primary).InRotation && g.member(backup).InRotation && g.Active == primary
		})
	}
	return p
}

// bothCall makes A and B call the primary until the leader has heard both
// as callers (two heartbeats), then stops B: B called it in the last 10 s,
// so A alone is not more than the quorum (half) of its callers.
func (p *pair) bothCall(t *testing.T) *traffic {
	t.Helper()
	begin := time.Now()
	a := startTraffic(t, p.sessions[0], group, 2, 10*time.Millisecond)
	b := startTraffic(t, p.sessions[1], group, 1, 50*time.Millisecond)
	eventually(t, 20*time.Second, "A and B calling for 2 s", func() bool {
		return len(served(a.records(), primary, begin, time.Now().Add(-2*time.Second))) > 0 &&
			len(served(b.records(), primary, begin, time.Now().Add(-2*time.Second))) > 0
	})
	b.Stop()
	return a
}

// bCallsOnBackup checks that each of n calls through B is served by the
// backup at the first attempt, and that the primary received none of them.
func (p *pair) bCallsOnBackup(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k := range n {
		res, err := callOne(ctx, p.sessions[1], group, "add", map[string]any{"a": k, "b": 1})
		if err != nil || !res.Success || res.Member != backup || res.Attempts != 1 {
			t.Fatalf("B's call %d: %+v, %v; want success on %s at the first attempt", k, res, err, backup)
		}
	}
}

// TestFleetOfTwoLearnsFromOne: a fleet of two agents, traffic through A,
// B a recent caller too. When the primary freezes (or dies), A ejects it
// on path evidence; A alone is not a quorum of two callers, but the
// leader's confirmation probe from B fails, so the primary leaves global
// rotation and B sends it no call.
func TestFleetOfTwoLearnsFromOne(t *testing.T) {
	for _, fault := range []string{"frozen", "killed"} {
		t.Run(fault, func(t *testing.T) {
			p := startPair(t)
			tr := p.bothCall(t)
			if fault == "frozen" {
				freeze(t, p.primary)
			} else {
				p.primary.Kill()
			}
			removed := cpLineTime(t, p.agents[0].WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 30*time.Second))
			p.replica.WaitLog(`msg=confirm_probe_result member=my-mcp agent_id=agent-b ok=false`, 15*time.Second)
			eventually(t, 15*time.Second, "B's snapshot without the primary", func() bool {
				return !groupDetails(t, p.sessions[1]).member(primary).InRotation
			})
			applied := cpLineTime(t, lastLine(t, p.agents[1].Logs(), `msg=snapshot_applied`))
			tr.Stop()
			p.bCallsOnBackup(t, 10) // each at the first attempt: B never tried the primary
			p.replica.WaitLog(`msg=member_out_of_rotation group=my-mcp-group member=my-mcp message="out of global rotation: confirmed`, 5*time.Second)
			t.Logf("%s primary: A's ejection → B's snapshot applied %s", fault, applied.Sub(removed).Round(time.Millisecond))
		})
	}
}

// lastLine returns the last log line matching re.
func lastLine(t *testing.T, logs, re string) string {
	t.Helper()
	lines := cpLines(logs, re)
	if len(lines) == 0 {
		t.Fatalf("no log line matches %s", re)
	}
	return lines[len(lines)-1].line
}
