package aggregate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// verdict is what one agent reports about probing member "m".
type verdict int

const (
	silent   verdict = iota // does not probe m
	unknown                 // probes m, first probe not finished
	ready                   // probes m: ready
	degraded                // probes m: degraded
)

func TestProbeVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		agents   int       // agents serving m
		probers  int       // the group's health.probers
		assigned []verdict // what the assigned probers report, in sorted id order
		others   []verdict // what the other agents report
		want     Votes
		degraded bool
	}{
		{name: "no agents", agents: 0, probers: 2},
		{name: "one agent ready", agents: 1, probers: 2, assigned: []verdict{ready}, want: Votes{Ready: 1}},
		{name: "one agent degraded decides alone", agents: 1, probers: 2,
			assigned: []verdict{degraded}, want: Votes{Degraded: 1}, degraded: true},
		{name: "both probers degraded", agents: 5, probers: 2,
			assigned: []verdict{degraded, degraded}, want: Votes{Degraded: 2}, degraded: true},
		{name: "exactly half degraded is not a majority", agents: 5, probers: 2,
			assigned: []verdict{degraded, ready}, want: Votes{Degraded: 1, Ready: 1}},
		{name: "two of three probers degraded", agents: 5, probers: 3,
			assigned: []verdict{ready, degraded, degraded}, want: Votes{Degraded: 2, Ready: 1}, degraded: true},
		{name: "a silent prober does not vote", agents: 5, probers: 2,
			assigned: []verdict{silent, degraded}, want: Votes{Degraded: 1}, degraded: true},
		{name: "an unknown verdict is silence", agents: 5, probers: 2,
			assigned: []verdict{degraded, unknown}, want: Votes{Degraded: 1}, degraded: true},
		{name: "other agents do not count while a prober has a verdict", agents: 5, probers: 2,
			assigned: []verdict{ready, silent}, others: []verdict{degraded, degraded, degraded},
			want: Votes{Ready: 1}},
		{name: "reassigned: silent probers fall back to other probers", agents: 5, probers: 2,
			assigned: []verdict{silent, silent}, others: []verdict{degraded, ready, degraded},
			want: Votes{Degraded: 2, Ready: 1}, degraded: true},
		{name: "reassigned: unknown probers fall back to other probers", agents: 3, probers: 2,
			assigned: []verdict{unknown, unknown}, others: []verdict{degraded},
			want: Votes{Degraded: 1}, degraded: true},
		{name: "fallback exactly half is not a majority", agents: 5, probers: 2,
			others: []verdict{degraded, ready, silent}, want: Votes{Degraded: 1, Ready: 1}},
		{name: "nobody probes: never eject on silence", agents: 5, probers: 2,
			assigned: []verdict{silent, silent}, others: []verdict{silent, silent, silent}},
		{name: "nobody has a verdict yet", agents: 3, probers: 2,
			assigned: []verdict{unknown, unknown}, others: []verdict{unknown}},
		{name: "probers capped at the candidates", agents: 2, probers: 5,
			assigned: []verdict{degraded, degraded}, want: Votes{Degraded: 2}, degraded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			for i := range tt.agents {
				ids = append(ids, fmt.Sprintf("agent-%d", i))
			}
			assigned := Probers("m", ids, tt.probers)
			if len(assigned) != min(tt.agents, tt.probers) {
				t.Fatalf("Probers(m, %d agents, %d) = %v", tt.agents, tt.probers, assigned)
			}
			var others []string
			for _, id := range ids {
				if !slices.Contains(assigned, id) {
					others = append(others, id)
				}
			}
			reports := map[string]verdict{}
			for i, v := range tt.assigned {
				reports[assigned[i]] = v
			}
			for i, v := range tt.others {
				reports[others[i]] = v
			}
			var agents []AgentView
			for _, id := range ids {
				a := agent(id, serves("m"))
				if v := reports[id]; v != silent {
					probes("m", Health(v-unknown))(&a)
				}
				agents = append(agents, a)
			}
			f := fleet([]*fleetfile.Group{with(grp("g", mem("m", 1)), func(g *fleetfile.Group) { g.Health.Probers = tt.probers })})

			got := Compute(Input{Fleet: f, Agents: agents, Now: now}).Members["m"]

			want := MemberResult{ID: "m", Degraded: tt.degraded, Probers: assigned, Votes: tt.want}
			if tt.degraded {
				want.Reason = ReasonProbers
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("member m (-want +got):\n%s", d)
			}
		})
	}
}

func TestTrafficQuorum(t *testing.T) {
	tests := []struct {
		name     string
		quorum   float64 // 0: the default
		agents   []AgentView
		in       bool
		callers  int
		ejecting []string
	}{
		{name: "no callers", in: true},
		{name: "the only caller ejects", agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
		}, callers: 1, ejecting: []string{"a"}},
		{name: "one of three callers ejects", in: true, agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Second)),
			agent("c", calls("m", time.Second)),
		}, callers: 3, ejecting: []string{"a"}},
		{name: "two of three callers eject", agents: []AgentView{
			agent("c", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Second)),
			agent("a", calls("m", time.Second, "g")),
		}, callers: 3, ejecting: []string{"a", "c"}},
		{name: "exactly half is not more than the quorum", in: true, agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Second)),
		}, callers: 2, ejecting: []string{"a"}},
		{name: "quorum 0.25: one of four is not more", quorum: 0.25, in: true, agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Second)),
			agent("c", calls("m", time.Second)),
			agent("d", calls("m", time.Second)),
		}, callers: 4, ejecting: []string{"a"}},
		{name: "quorum 0.25: one of three is more", quorum: 0.25, agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Second)),
			agent("c", calls("m", time.Second)),
		}, callers: 3, ejecting: []string{"a"}},
		{name: "quorum 1: even every caller is not more", quorum: 1, in: true, agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
		}, callers: 1, ejecting: []string{"a"}},
		{name: "calls older than 10 s do not count", in: true, agents: []AgentView{
			agent("a", calls("m", CallWindow+time.Millisecond, "g")),
			agent("b", calls("m", time.Second)),
		}, callers: 1},
		{name: "old non-ejecting callers do not dilute", agents: []AgentView{
			agent("a", calls("m", time.Second, "g")),
			agent("b", calls("m", time.Minute)),
			agent("c", calls("m", 11*time.Second)),
		}, callers: 1, ejecting: []string{"a"}},
		{name: "a call exactly 10 s old counts", agents: []AgentView{
			agent("a", calls("m", CallWindow, "g")),
		}, callers: 1, ejecting: []string{"a"}},
		{name: "an agent that never called does not count", in: true, agents: []AgentView{
			agent("a", ejectsQuietly("m", "g")),
			agent("b", calls("m", time.Second)),
		}, callers: 1},
		{name: "ejected in another group only", in: true, agents: []AgentView{
			agent("a", calls("m", time.Second, "other")),
		}, callers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := with(grp("g", mem("m", 1)), func(g *fleetfile.Group) { g.Health.Quorum = tt.quorum })
			got := Compute(Input{Fleet: fleet([]*fleetfile.Group{g}), Agents: tt.agents, Now: now}).Groups["g"].Members[0]
			want := GroupMember{ID: "m", Priority: 1, Weight: 1, InRotation: tt.in, Callers: tt.callers, Ejecting: tt.ejecting}
			if !tt.in {
				want.Reason = ReasonTrafficQuorum
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("member m in group g (-want +got):\n%s", d)
			}
		})
	}
}

// TestMemberInTwoGroups: m is in g1 (quorum 0.5, probers 1) and g2 (quorum
// 0.25, probers 3); rotation is decided per group, probing once for both.
func TestMemberInTwoGroups(t *testing.T) {
	g1 := with(grp("g1", mem("m", 1), mem("x", 2)), func(g *fleetfile.Group) { g.Health.Quorum, g.Health.Probers = 0.5, 1 })
	g2 := with(grp("g2", mem("y", 1), mem("m", 2)), func(g *fleetfile.Group) { g.Health.Quorum, g.Health.Probers = 0.25, 3 })
	f := fleet([]*fleetfile.Group{g1, g2})
	tests := []struct {
		name     string
		ejects   map[string][]string // caller → groups it ejects m in; three callers a, b, c
		inG1     bool
		inG2     bool
		ejecting map[string][]string // group → agents ejecting m there
	}{
		{name: "nobody ejects", inG1: true, inG2: true},
		{name: "one of three ejects in both: out of the lower quorum only",
			ejects: map[string][]string{"a": {"g1", "g2"}}, inG1: true,
			ejecting: map[string][]string{"g1": {"a"}, "g2": {"a"}}},
		{name: "two of three eject in g1 only",
			ejects: map[string][]string{"a": {"g1"}, "c": {"g1"}}, inG2: true,
			ejecting: map[string][]string{"g1": {"a", "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var agents []AgentView
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				a := agent(id, serves("m", "x", "y"))
				if id <= "c" {
					calls("m", time.Second, tt.ejects[id]...)(&a)
				}
				agents = append(agents, a)
			}
			out := Compute(Input{Fleet: f, Agents: agents, Now: now})

			for member, n := range map[string]int{"m": 3, "x": 1, "y": 3} {
				if got := out.Members[member].Probers; len(got) != n {
					t.Errorf("member %s probers = %v, want %d of them", member, got, n)
				}
			}
			for _, c := range []struct {
				group string
				index int
				in    bool
			}{{"g1", 0, tt.inG1}, {"g2", 1, tt.inG2}} {
				gm := out.Groups[c.group].Members[c.index]
				if gm.ID != "m" || gm.InRotation != c.in || gm.Callers != 3 || !slices.Equal(gm.Ejecting, tt.ejecting[c.group]) {
					t.Errorf("group %s: got %+v, want m in rotation %v, 3 callers, ejecting %v",
						c.group, gm, c.in, tt.ejecting[c.group])
				}
			}
		})
	}
}

func TestReasons(t *testing.T) {
	probersSayDegraded := []agentOpt{serves("m", "n"), probes("m", Degraded)}
	tests := []struct {
		name    string
		agents  []AgentView
		drained map[string][]string
		reason  string // of m in g; "" is in rotation
		nReason string // of n in g
		wantDr  []string
	}{
		{name: "all in", agents: []AgentView{agent("a", serves("m", "n"), probes("m", Ready))}},
		{name: "drained", drained: map[string][]string{"g": {"m"}}, reason: ReasonDrained, wantDr: []string{"m"}},
		{name: "drained beats probers", agents: []AgentView{agent("a", probersSayDegraded...)},
			drained: map[string][]string{"g": {"m"}}, reason: ReasonDrained, wantDr: []string{"m"}},
		{name: "probers beat traffic quorum",
			agents: []AgentView{agent("a", append(probersSayDegraded, calls("m", time.Second, "g"))...)},
			reason: ReasonProbers},
		{name: "traffic quorum", agents: []AgentView{agent("a", serves("m", "n"), calls("m", time.Second, "g"))},
			reason: ReasonTrafficQuorum},
		{name: "drained in another group only", drained: map[string][]string{"other": {"m"}}},
		{name: "drain of a non-member and duplicates are ignored",
			drained: map[string][]string{"g": {"n", "zzz", "n"}}, nReason: ReasonDrained, wantDr: []string{"n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet([]*fleetfile.Group{grp("g", mem("m", 1), mem("n", 1))})
			got := Compute(Input{Fleet: f, Agents: tt.agents, Drained: tt.drained, Now: now}).Groups["g"]
			var wantRotation []string
			for _, c := range []struct{ id, reason string }{{"m", tt.reason}, {"n", tt.nReason}} {
				gm := got.Members[slices.IndexFunc(got.Members, func(gm GroupMember) bool { return gm.ID == c.id })]
				if gm.Reason != c.reason || gm.InRotation != (c.reason == "") {
					t.Errorf("member %s: reason %q, in rotation %v; want reason %q", c.id, gm.Reason, gm.InRotation, c.reason)
				}
				if c.reason == "" {
					wantRotation = append(wantRotation, c.id)
				}
			}
			if !slices.Equal(got.Rotation, wantRotation) || !slices.Equal(got.Drained, tt.wantDr) {
				t.Errorf("rotation %v, drained %v; want %v, %v", got.Rotation, got.Drained, wantRotation, tt.wantDr)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	tests := []struct {
		name          string
		quorum        float64
		agents        []AgentView
		open          bool
		votes, called int
	}{
		{name: "no callers"},
		{name: "the only caller has it open", open: true, votes: 1, called: 1, agents: []AgentView{
			agent("a", callsGroup("g", time.Second, Open)),
		}},
		{name: "exactly half is not more than the quorum", votes: 1, called: 2, agents: []AgentView{
			agent("a", callsGroup("g", time.Second, Open)),
			agent("b", callsGroup("g", time.Second, Closed)),
		}},
		{name: "two of three", open: true, votes: 2, called: 3, agents: []AgentView{
			agent("a", callsGroup("g", time.Second, Open)),
			agent("b", callsGroup("g", time.Second, Closed)),
			agent("c", callsGroup("g", time.Second, Open)),
		}},
		{name: "half open is not open", votes: 1, called: 3, agents: []AgentView{
			agent("a", callsGroup("g", time.Second, Open)),
			agent("b", callsGroup("g", time.Second, HalfOpen)),
			agent("c", callsGroup("g", time.Second, HalfOpen)),
		}},
		{name: "calls older than 10 s do not count", votes: 0, called: 1, agents: []AgentView{
			agent("a", callsGroup("g", CallWindow+time.Millisecond, Open)),
			agent("b", callsGroup("g", time.Second, Closed)),
		}},
		{name: "quorum 0.25: one of three", quorum: 0.25, open: true, votes: 1, called: 3, agents: []AgentView{
			agent("a", callsGroup("g", time.Second, Open)),
			agent("b", callsGroup("g", time.Second, Closed)),
			agent("c", callsGroup("g", time.Second, Closed)),
		}},
		{name: "another group's breaker", agents: []AgentView{
			agent("a", callsGroup("other", time.Second, Open)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := with(grp("g", mem("m", 1)), func(g *fleetfile.Group) { g.Health.Quorum = tt.quorum })
			got := Compute(Input{Fleet: fleet([]*fleetfile.Group{g}), Agents: tt.agents, Now: now}).Groups["g"]
			wantState := StateHealthy
			if tt.open {
				wantState = StateDegraded
			}
			if got.BreakerOpen != tt.open || got.OpenVotes != tt.votes || got.Callers != tt.called || got.State != wantState {
				t.Errorf("breaker open %v (%d of %d), state %s; want %v (%d of %d), %s",
					got.BreakerOpen, got.OpenVotes, got.Callers, got.State, tt.open, tt.votes, tt.called, wantState)
			}
		})
	}
}

func TestRotationAndState(t *testing.T) {
	members := []fleetfile.Member{mem("c", 3), mem("a2", 2), mem("b", 1), mem("a1", 2)}
	tests := []struct {
		name       string
		strategy   fleetfile.Strategy
		minHealthy int
		drained    []string
		open       bool
		want       GroupResult // ID and Members are not compared
	}{
		{name: "priority: lowest number serves, ties in config order", strategy: fleetfile.StrategyPriority,
			want: GroupResult{State: StateHealthy, Rotation: []string{"b", "a2", "a1", "c"}, ActiveMember: "b"}},
		{name: "priority: failover to the next priority", strategy: fleetfile.StrategyPriority, drained: []string{"b"},
			want: GroupResult{State: StateHealthy, Rotation: []string{"a2", "a1", "c"}, Drained: []string{"b"}, ActiveMember: "a2"}},
		{name: "round robin has no active member", strategy: fleetfile.StrategyRoundRobin,
			want: GroupResult{State: StateHealthy, Rotation: []string{"b", "a2", "a1", "c"}}},
		{name: "weighted round robin has no active member", strategy: fleetfile.StrategyWeightedRoundRobin,
			drained: []string{"a2"},
			want:    GroupResult{State: StateHealthy, Rotation: []string{"b", "a1", "c"}, Drained: []string{"a2"}}},
		{name: "fewer than min_healthy is partial", strategy: fleetfile.StrategyRandom, minHealthy: 3,
			drained: []string{"a1", "c"},
			want:    GroupResult{State: StatePartial, Rotation: []string{"b", "a2"}, Drained: []string{"a1", "c"}}},
		{name: "exactly min_healthy is healthy", strategy: fleetfile.StrategyRandom, minHealthy: 2,
			drained: []string{"a1", "c"},
			want:    GroupResult{State: StateHealthy, Rotation: []string{"b", "a2"}, Drained: []string{"a1", "c"}}},
		{name: "min_healthy 0 counts as 1", strategy: fleetfile.StrategyLeastConnections, minHealthy: 0,
			drained: []string{"a1", "c", "a2"},
			want:    GroupResult{State: StateHealthy, Rotation: []string{"b"}, Drained: []string{"a1", "a2", "c"}}},
		{name: "none in rotation is inactive", strategy: fleetfile.StrategyPriority,
			drained: []string{"a1", "c", "a2", "b"},
			want:    GroupResult{State: StateInactive, Drained: []string{"a1", "a2", "b", "c"}}},
		{name: "an open breaker is degraded whatever the rotation", strategy: fleetfile.StrategyPriority, open: true,
			want: GroupResult{State: StateDegraded, Rotation: []string{"b", "a2", "a1", "c"}, ActiveMember: "b",
				BreakerOpen: true, OpenVotes: 1, Callers: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := with(grp("g", members...), func(g *fleetfile.Group) { g.Strategy, g.MinHealthy = tt.strategy, tt.minHealthy })
			var agents []AgentView
			if tt.open {
				agents = append(agents, agent("a", callsGroup("g", time.Second, Open)))
			}
			in := Input{Fleet: fleet([]*fleetfile.Group{g}), Agents: agents, Drained: map[string][]string{"g": tt.drained}, Now: now}
			got := Compute(in).Groups["g"]
			got.ID, got.Members = "", nil
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("group g (-want +got):\n%s", d)
			}
		})
	}
}

func TestAssignments(t *testing.T) {
	f := fleet([]*fleetfile.Group{
		with(grp("g", mem("m", 1), mem("n", 1)), func(g *fleetfile.Group) { g.Health.Probers = 3 }),
	}, "solo", "unserved")
	agents := []AgentView{
		agent("a", serves("m", "n", "solo", "not-in-fleet")),
		agent("b", serves("m", "solo")),
		agent("c", serves("m", "n", "solo")),
		agent("d", serves("m", "n")),
		agent("idle"),
	}
	out := Compute(Input{Fleet: f, Agents: agents, Now: now})

	wantProbers := map[string][]string{
		"m":        Probers("m", []string{"a", "b", "c", "d"}, 3),
		"n":        Probers("n", []string{"a", "c", "d"}, 3),
		"solo":     Probers("solo", []string{"a", "b", "c"}, 2), // in no group: 2
		"unserved": nil,
	}
	want := map[string][]string{"a": nil, "b": nil, "c": nil, "d": nil, "idle": nil}
	for _, id := range []string{"m", "n", "solo", "unserved"} {
		got := out.Members[id].Probers
		if d := cmp.Diff(wantProbers[id], got); d != "" {
			t.Errorf("member %s probers (-want +got):\n%s", id, d)
		}
		for _, p := range got {
			want[p] = append(want[p], id)
		}
	}
	if len(wantProbers["m"]) != 3 || len(wantProbers["n"]) != 3 || len(wantProbers["solo"]) != 2 {
		t.Errorf("probers = %v, want 3 for m and n, 2 for solo", wantProbers)
	}
	if d := cmp.Diff(want, out.Assignments); d != "" {
		t.Errorf("assignments (-want +got):\n%s", d)
	}
	if _, ok := out.Assignments["idle"]; !ok {
		t.Error("an agent that probes nothing has no assignments entry")
	}
	if _, ok := out.Members["not-in-fleet"]; ok {
		t.Error("a served id outside the fleet got a member result")
	}
}

func TestEmptyInput(t *testing.T) {
	out := Compute(Input{Agents: []AgentView{agent("a", serves("m"))}, Now: now})
	want := Output{Members: map[string]MemberResult{}, Groups: map[string]GroupResult{}, Assignments: map[string][]string{"a": nil}}
	if d := cmp.Diff(want, out); d != "" {
		t.Errorf("nil fleet (-want +got):\n%s", d)
	}
	out = Compute(Input{Fleet: fleet([]*fleetfile.Group{grp("g", mem("m", 1))}), Now: now})
	if g := out.Groups["g"]; g.State != StateHealthy || !slices.Equal(g.Rotation, []string{"m"}) || len(out.Assignments) != 0 {
		t.Errorf("no agents: group %+v, assignments %v; want m healthy in rotation, no assignments", g, out.Assignments)
	}
}

// TestParsedFleet runs the seed's failover recipe through the data plane's
// parser: the defaults it fills in are the ones Compute assumes.
func TestParsedFleet(t *testing.T) {
	src := `
mcp_servers:
  my-mcp:        {mode: remote, endpoint: http://localhost:8080/mcp}
  my-mcp-backup: {mode: remote, endpoint: http://localhost:8081/mcp}
  my-mcp-group:
    mode: group
    strategy: priority
    members: [{id: my-mcp, priority: 1}, {id: my-mcp-backup, priority: 2}]
`
	f, err := fleetfile.Parse("config.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var agents []AgentView
	for _, id := range []string{"host-a", "host-b", "host-c"} {
		agents = append(agents, agent(id, serves("my-mcp", "my-mcp-backup"),
			probes("my-mcp", Degraded), probes("my-mcp-backup", Ready)))
	}
	out := Compute(Input{Fleet: f, Agents: agents, Now: now})
	g := out.Groups["my-mcp-group"]
	if g.ActiveMember != "my-mcp-backup" || g.State != StateHealthy || len(out.Members["my-mcp"].Probers) != 2 {
		t.Errorf("group %+v, my-mcp %+v; want failover to my-mcp-backup with 2 probers", g, out.Members["my-mcp"])
	}
}

func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	in := randomInput(r)
	keep := cloneAgents(in.Agents)
	want := Compute(in)
	if d := cmp.Diff(keep, in.Agents); d != "" {
		t.Fatalf("Compute modified its input (-before +after):\n%s", d)
	}
	degraded, out := 0, 0
	for _, m := range want.Members {
		if m.Degraded {
			degraded++
		}
	}
	for _, g := range want.Groups {
		for _, gm := range g.Members {
			if gm.Reason == ReasonTrafficQuorum {
				out++
			}
		}
	}
	if degraded == 0 || out == 0 {
		t.Fatalf("random input exercises too little: %d members degraded, %d traffic ejections", degraded, out)
	}
	for i := range 20 {
		shuffled := in
		shuffled.Agents = cloneAgents(in.Agents)
		r.Shuffle(len(shuffled.Agents), func(i, j int) {
			shuffled.Agents[i], shuffled.Agents[j] = shuffled.Agents[j], shuffled.Agents[i]
		})
		for _, a := range shuffled.Agents {
			r.Shuffle(len(a.Serves), func(i, j int) { a.Serves[i], a.Serves[j] = a.Serves[j], a.Serves[i] })
			for _, v := range a.Members {
				r.Shuffle(len(v.EjectedIn), func(i, j int) { v.EjectedIn[i], v.EjectedIn[j] = v.EjectedIn[j], v.EjectedIn[i] })
			}
		}
		if d := cmp.Diff(want, Compute(shuffled)); d != "" {
			t.Fatalf("shuffle %d changed the output (-first +shuffled):\n%s", i, d)
		}
	}
}

// randomInput is a fleet of 12 members in 4 groups and 30 agents with
// random views of them.
func randomInput(r *rand.Rand) Input {
	strategies := []fleetfile.Strategy{fleetfile.StrategyPriority, fleetfile.StrategyRoundRobin, fleetfile.StrategyRandom}
	var groups []*fleetfile.Group
	for gi := range 4 {
		g := grp(fmt.Sprintf("g%d", gi))
		g.Strategy = strategies[r.IntN(len(strategies))]
		g.Health.Quorum = []float64{0.25, 0.5, 0.75}[r.IntN(3)]
		g.Health.Probers = 1 + r.IntN(4)
		g.MinHealthy = 1 + r.IntN(3)
		for _, mi := range r.Perm(12)[:2+r.IntN(5)] {
			g.Members = append(g.Members, mem(fmt.Sprintf("m%02d", mi), 1+r.IntN(3)))
		}
		groups = append(groups, g)
	}
	in := Input{Fleet: fleet(groups, "m00", "m11"), Now: now, Drained: map[string][]string{}}
	in.Drained["g0"] = []string{groups[0].Members[0].ID}
	for ai := range 30 {
		a := agent(fmt.Sprintf("agent-%02d", ai))
		for mi := range 12 {
			id := fmt.Sprintf("m%02d", mi)
			if r.IntN(4) == 0 {
				continue
			}
			a.Serves = append(a.Serves, id)
			v := MemberView{Probed: r.IntN(2) == 0, Health: Health(r.IntN(3))}
			if r.IntN(3) > 0 {
				v.LastCall = now.Add(-time.Duration(r.IntN(15)) * time.Second)
			}
			for _, g := range groups {
				if r.IntN(3) == 0 {
					v.EjectedIn = append(v.EjectedIn, g.ID)
				}
			}
			a.Members[id] = v
		}
		for _, g := range groups {
			a.Groups[g.ID] = GroupView{Breaker: Breaker(r.IntN(3)), LastCall: now.Add(-time.Duration(r.IntN(15)) * time.Second)}
		}
		in.Agents = append(in.Agents, a)
	}
	return in
}

func cloneAgents(agents []AgentView) []AgentView {
	out := make([]AgentView, len(agents))
	for i, a := range agents {
		c := AgentView{ID: a.ID, Serves: slices.Clone(a.Serves), Members: map[string]MemberView{}, Groups: map[string]GroupView{}}
		for id, v := range a.Members {
			v.EjectedIn = slices.Clone(v.EjectedIn)
			c.Members[id] = v
		}
		for id, v := range a.Groups {
			c.Groups[id] = v
		}
		out[i] = c
	}
	return out
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct {
		s    fmt.Stringer
		want string
	}{
		{Unknown, "unknown"}, {Ready, "ready"}, {Degraded, "degraded"}, {Health(7), "Health(7)"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// Traffic evidence by where it comes from: one caller's ejection on server
// evidence ejects globally; on path evidence, only with a failed
// confirmation probe (or the quorum).
func TestEvidenceBySource(t *testing.T) {
	g := grp("g", mem("p", 1), mem("b", 2))
	f := fleet([]*fleetfile.Group{g})
	serverEvidence := func(a *AgentView) {
		v := a.Members["p"]
		v.ServerEjectedIn = []string{"g"}
		a.Members["p"] = v
	}
	tests := []struct {
		name      string
		agents    []AgentView
		confirmed bool
		reason    string
	}{
		{"path evidence from one of two callers", []AgentView{
			agent("a", serves("p", "b"), calls("p", time.Second, "g")),
			agent("b", serves("p", "b"), calls("p", time.Second)),
		}, false, ""},
		{"path evidence confirmed by another vantage point", []AgentView{
			agent("a", serves("p", "b"), calls("p", time.Second, "g")),
			agent("b", serves("p", "b"), calls("p", time.Second)),
		}, true, ReasonConfirmed},
		{"a failed confirmation stands while it holds, the ejecting agent on probation", []AgentView{
			agent("a", serves("p", "b"), calls("p", time.Second)),
			agent("b", serves("p", "b"), calls("p", time.Second)),
		}, true, ReasonConfirmed},
		{"server evidence from one of three callers", []AgentView{
			agent("a", serves("p", "b"), calls("p", time.Second, "g"), serverEvidence),
			agent("b", serves("p", "b"), calls("p", time.Second)),
			agent("c", serves("p", "b"), calls("p", time.Second)),
		}, false, ReasonServerErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Compute(Input{Fleet: f, Agents: tt.agents, Now: now, Confirmed: map[string]bool{"p": tt.confirmed}})
			gm := out.Groups["g"].Members[0]
			if gm.Reason != tt.reason || gm.InRotation != (tt.reason == "") {
				t.Fatalf("p: reason %q, in rotation %v; want reason %q", gm.Reason, gm.InRotation, tt.reason)
			}
		})
	}
}
