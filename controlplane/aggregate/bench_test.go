package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// BenchmarkCompute decides a fleet of 50 members in 20 groups (5 members
// each, every member in 2 groups) seen by 1,000 agents that all serve and
// call every member and group; the assigned probers report verdicts, and a
// few agents eject members or have breakers open.
func BenchmarkCompute(b *testing.B) {
	const nAgents, nMembers, nGroups = 1000, 50, 20
	members := make([]string, nMembers)
	for i := range members {
		members[i] = fmt.Sprintf("mcp-server-%02d", i)
	}
	var groups []*fleetfile.Group
	for gi := range nGroups {
		g := grp(fmt.Sprintf("group-%02d", gi))
		if gi%2 == 0 {
			g.Strategy = fleetfile.StrategyPriority
		}
		for j := range 5 {
			g.Members = append(g.Members, mem(members[(gi*5+j)%nMembers], 1+j))
		}
		groups = append(groups, g)
	}
	agents := agentIDs(nAgents)
	probers := map[string][]string{}
	for _, m := range members {
		probers[m] = Probers(m, agents, 2)
	}
	in := Input{Fleet: fleet(groups), Now: now}
	for ai, id := range agents {
		a := agent(id, serves(members...))
		for mi, m := range members {
			v := MemberView{LastCall: now.Add(-time.Duration(ai%15) * time.Second)}
			for _, p := range probers[m] {
				if p == id {
					v.Probed, v.Health = true, Ready
					if mi%10 == 0 {
						v.Health = Degraded
					}
				}
			}
			if (ai+mi)%7 == 0 {
				v.EjectedIn = []string{groups[mi%nGroups].ID}
			}
			a.Members[m] = v
		}
		for gi, g := range groups {
			gv := GroupView{LastCall: now.Add(-time.Duration(ai%12) * time.Second)}
			if (ai+gi)%5 == 0 {
				gv.Breaker = Open
			}
			a.Groups[g.ID] = gv
		}
		in.Agents = append(in.Agents, a)
	}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}

// BenchmarkComputeLargeFleet decides the shape of a platform team's fleet:
// 300 members in 100 groups of 3, seen by 10,000 agents that each serve
// and call 1 to 3 groups (as in hangar-cpbench -fleet large). A decision
// should cost what the agents report, not agents × members.
func BenchmarkComputeLargeFleet(b *testing.B) {
	const nAgents, nGroups = 10000, 100
	var groups []*fleetfile.Group
	for gi := range nGroups {
		g := grp(fmt.Sprintf("group-%03d", gi))
		g.Strategy = fleetfile.StrategyPriority
		for j := range 3 {
			g.Members = append(g.Members, mem(fmt.Sprintf("server-%03d-%d", gi, j), 1+j))
		}
		groups = append(groups, g)
	}
	in := Input{Fleet: fleet(groups), Now: now}
	for ai, id := range agentIDs(nAgents) {
		a := agent(id)
		for k := range 1 + ai%3 {
			g := groups[(ai*7+k*13)%nGroups]
			for _, m := range g.Members {
				a.Serves = append(a.Serves, m.ID)
				a.Members[m.ID] = MemberView{LastCall: now.Add(-time.Duration(ai%15) * time.Second)}
			}
			a.Groups[g.ID] = GroupView{LastCall: now.Add(-time.Duration(ai%12) * time.Second)}
		}
		in.Agents = append(in.Agents, a)
	}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}
