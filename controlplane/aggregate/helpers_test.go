package aggregate

import (
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// grp is a group with the parser's defaults and the given members.
func grp(id string, members ...fleetfile.Member) *fleetfile.Group {
	return &fleetfile.Group{
		ID:         id,
		Strategy:   fleetfile.StrategyRoundRobin,
		MinHealthy: 1,
		Members:    members,
		Health:     fleetfile.GroupHealth{UnhealthyThreshold: 2, HealthyThreshold: 1, Quorum: 0.5, Probers: 2},
	}
}

// with applies f to v and returns v, to tweak a value inside a table.
func with[T any](v *T, f func(*T)) *T {
	f(v)
	return v
}

func mem(id string, priority int) fleetfile.Member {
	return fleetfile.Member{ID: id, Priority: priority, Weight: 1}
}

// fleet holds the given groups and a remote server for each member and
// each extra id.
func fleet(groups []*fleetfile.Group, extra ...string) *fleetfile.Fleet {
	f := &fleetfile.Fleet{Servers: map[string]*fleetfile.Server{}, Groups: map[string]*fleetfile.Group{}}
	add := func(id string) {
		f.Servers[id] = &fleetfile.Server{ID: id, Mode: fleetfile.ModeRemote, Endpoint: "http://" + id + "/mcp"}
	}
	for _, g := range groups {
		f.Groups[g.ID] = g
		for _, m := range g.Members {
			add(m.ID)
		}
	}
	for _, id := range extra {
		add(id)
	}
	return f
}

type agentOpt func(*AgentView)

func agent(id string, opts ...agentOpt) AgentView {
	a := AgentView{ID: id, Members: map[string]MemberView{}, Groups: map[string]GroupView{}}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func serves(ids ...string) agentOpt {
	return func(a *AgentView) { a.Serves = append(a.Serves, ids...) }
}

// probes makes the agent report its probe verdict h on member.
func probes(member string, h Health) agentOpt {
	return func(a *AgentView) {
		v := a.Members[member]
		v.Probed, v.Health = true, h
		a.Members[member] = v
	}
}

// calls makes the agent's last call to member ago before now, with the
// member out of local rotation in the groups ejectedIn.
func calls(member string, ago time.Duration, ejectedIn ...string) agentOpt {
	return func(a *AgentView) {
		v := a.Members[member]
		v.LastCall, v.EjectedIn = now.Add(-ago), ejectedIn
		a.Members[member] = v
	}
}

// ejectsQuietly makes the agent have member out of local rotation in the
// groups ejectedIn without ever having called it.
func ejectsQuietly(member string, ejectedIn ...string) agentOpt {
	return func(a *AgentView) {
		v := a.Members[member]
		v.EjectedIn = ejectedIn
		a.Members[member] = v
	}
}

// callsGroup makes the agent's last call to group ago before now, with its
// breaker in state b.
func callsGroup(group string, ago time.Duration, b Breaker) agentOpt {
	return func(a *AgentView) { a.Groups[group] = GroupView{Breaker: b, LastCall: now.Add(-ago)} }
}
