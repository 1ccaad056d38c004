package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// Defaults for a group whose health block leaves a field at zero.
const (
	defaultProbers = 2
	defaultQuorum  = 0.5
)

// Compute decides prober assignments, global member health, and each
// group's rotation, breaker and state from in, by the rules of the package
// comment. It is pure and deterministic.
func Compute(in Input) Output {
	ms := members(in.Fleet)
	out := Output{
		Members:     make(map[string]MemberResult, len(ms.ids)),
		Groups:      make(map[string]GroupResult),
		Assignments: make(map[string][]string, len(in.Agents)),
	}
	for _, a := range in.Agents {
		out.Assignments[a.ID] = nil
	}
	candidates := make([][]string, len(ms.ids)) // by index in ms.ids
	for _, a := range in.Agents {
		for _, id := range a.Serves {
			if i, ok := ms.index[id]; ok {
				candidates[i] = append(candidates[i], a.ID)
			}
		}
	}
	ix := indexAgents(in, ms)
	tallies := make(map[string]tally, len(ms.ids))
	for i, id := range ms.ids { // sorted, so every assignment list is too
		probers := Probers(id, candidates[i], ms.probers(id))
		for _, p := range probers {
			out.Assignments[p] = append(out.Assignments[p], id)
		}
		t := count(in, id, probers, ms.groups[id], ix.members[i])
		tallies[id] = t
		out.Members[id] = t.result
	}
	if in.Fleet != nil {
		for gid, g := range in.Fleet.Groups {
			out.Groups[gid] = group(in, g, tallies, ix.groups[gid])
		}
	}
	return out
}

// agentIndex lists, for each member (by index in memberSet.ids) and each
// group, the agents (by index in Input.Agents, ascending) that report on
// it: a decision reads each agent's views once, not once per member and
// group of the fleet.
type agentIndex struct {
	members [][]int
	groups  map[string][]int
}

func indexAgents(in Input, ms memberSet) agentIndex {
	ix := agentIndex{members: make([][]int, len(ms.ids)), groups: map[string][]int{}}
	for ai, a := range in.Agents {
		for id := range a.Members {
			if i, ok := ms.index[id]; ok {
				ix.members[i] = append(ix.members[i], ai)
			}
		}
		for id := range a.Groups {
			ix.groups[id] = append(ix.groups[id], ai)
		}
	}
	return ix
}

// memberSet lists the members of a fleet and the groups containing each.
type memberSet struct {
	ids    []string                      // sorted
	index  map[string]int                // member id → its index in ids
	groups map[string][]*fleetfile.Group // member id → its groups, by group id
}

func members(f *fleetfile.Fleet) memberSet {
	ms := memberSet{groups: map[string][]*fleetfile.Group{}}
	if f == nil {
		return ms
	}
	for id := range f.Servers {
		ms.groups[id] = nil
	}
	for _, g := range f.Groups {
		for _, m := range g.Members {
			if !slices.Contains(ms.groups[m.ID], g) { // a duplicate member counts once
				ms.groups[m.ID] = append(ms.groups[m.ID], g)
			}
		}
	}
	for id, gs := range ms.groups {
		ms.ids = append(ms.ids, id)
		slices.SortFunc(gs, func(a, b *fleetfile.Group) int { return cmp.Compare(a.ID, b.ID) })
	}
	slices.Sort(ms.ids)
	ms.index = make(map[string]int, len(ms.ids))
	for i, id := range ms.ids {
		ms.index[id] = i
	}
	return ms
}

// probers is how many agents probe member: the largest health.probers of
// its groups.
func (ms memberSet) probers(member string) int {
	gs := ms.groups[member]
	if len(gs) == 0 {
		return defaultProbers
	}
	n := 0
	for _, g := range gs {
		n = max(n, probersOf(g))
	}
	return n
}

func probersOf(g *fleetfile.Group) int {
	if g.Health.Probers > 0 {
		return g.Health.Probers
	}
	return defaultProbers
}

func quorumOf(g *fleetfile.Group) float64 {
	if g.Health.Quorum > 0 {
		return g.Health.Quorum
	}
	return defaultQuorum
}

// tally is what the agents said about one member.
type tally struct {
	result   MemberResult
	callers  int
	ejecting map[string][]string // group id → callers ejecting the member there
	server   map[string][]string // group id → those ejecting it on server evidence
}

// count reads every agent's view of member: probe verdicts and the traffic
// quorum of each of its groups.
func count(in Input, member string, probers []string, groups []*fleetfile.Group, agents []int) tally {
	t := tally{
		result:   MemberResult{ID: member, Probers: probers},
		ejecting: make(map[string][]string, len(groups)),
		server:   make(map[string][]string),
	}
	var assigned, all Votes
	for _, ai := range agents {
		a := &in.Agents[ai]
		v := a.Members[member]
		if v.Probed {
			all.add(v.Health)
			if slices.Contains(probers, a.ID) {
				assigned.add(v.Health)
			}
		}
		if !recent(v.LastCall, in.Now) {
			continue
		}
		t.callers++
		for _, g := range groups {
			if slices.Contains(v.EjectedIn, g.ID) {
				t.ejecting[g.ID] = append(t.ejecting[g.ID], a.ID)
				if slices.Contains(v.ServerEjectedIn, g.ID) {
					t.server[g.ID] = append(t.server[g.ID], a.ID)
				}
			}
		}
	}
	for _, e := range t.ejecting {
		slices.Sort(e)
	}
	for _, e := range t.server {
		slices.Sort(e)
	}
	t.result.Votes = assigned
	if assigned.total() == 0 {
		t.result.Votes = all
	}
	if t.result.Votes.Degraded > t.result.Votes.Ready {
		t.result.Degraded = true
		t.result.Reason = ReasonProbers
	}
	return t
}

func (v *Votes) add(h Health) {
	switch h {
	case Degraded:
		v.Degraded++
	case Ready:
		v.Ready++
	}
}

func (v Votes) total() int { return v.Degraded + v.Ready }

// recent reports whether a call at t counts as within CallWindow of now.
// A call stamped after now (clock skew) is recent.
func recent(t, now time.Time) bool {
	return !t.IsZero() && now.Sub(t) <= CallWindow
}

// moreThan reports whether votes are strictly more than the fraction q of
// total. The division is exact at the boundary: 1/2 == 0.5, 3/10 == 0.3.
func moreThan(votes, total int, q float64) bool {
	return total > 0 && float64(votes)/float64(total) > q
}

// group decides one group's rotation, breaker and state.
func group(in Input, g *fleetfile.Group, tallies map[string]tally, agents []int) GroupResult {
	q := quorumOf(g)
	r := GroupResult{ID: g.ID, Members: make([]GroupMember, 0, len(g.Members))}
	for _, id := range in.Drained[g.ID] {
		if slices.ContainsFunc(g.Members, func(m fleetfile.Member) bool { return m.ID == id }) {
			r.Drained = append(r.Drained, id)
		}
	}
	slices.Sort(r.Drained)
	r.Drained = slices.Compact(r.Drained)
	var inRotation []fleetfile.Member
	for _, m := range g.Members {
		gm := member(g, m, tallies[m.ID], q, slices.Contains(r.Drained, m.ID), in.Confirmed[m.ID])
		if gm.InRotation {
			inRotation = append(inRotation, m)
		}
		r.Members = append(r.Members, gm)
	}
	slices.SortStableFunc(inRotation, func(a, b fleetfile.Member) int { return cmp.Compare(a.Priority, b.Priority) })
	for _, m := range inRotation {
		r.Rotation = append(r.Rotation, m.ID)
	}
	if g.Strategy == fleetfile.StrategyPriority && len(r.Rotation) > 0 {
		r.ActiveMember = r.Rotation[0]
	}
	for _, ai := range agents {
		if v := in.Agents[ai].Groups[g.ID]; recent(v.LastCall, in.Now) {
			r.Callers++
			if v.Breaker == Open {
				r.OpenVotes++
			}
		}
	}
	r.BreakerOpen = moreThan(r.OpenVotes, r.Callers, q)
	r.State = state(r, g.MinHealthy)
	return r
}

// member decides whether m is in g's global rotation. Traffic evidence
// ejects by where it comes from (docs/design.md §4.2): one caller's
// ejection on server evidence; path evidence when a confirmation probe
// failed, or when more than the quorum of recent callers agree.
func member(g *fleetfile.Group, m fleetfile.Member, t tally, q float64, drained, confirmed bool) GroupMember {
	gm := GroupMember{
		ID: m.ID, Priority: m.Priority, Weight: m.Weight,
		Callers: t.callers, Ejecting: t.ejecting[g.ID], ServerErrors: t.server[g.ID],
	}
	gm.Confirmed = confirmed
	switch {
	case drained:
		gm.Reason = ReasonDrained
	case t.result.Degraded:
		gm.Reason = ReasonProbers
	case len(gm.ServerErrors) > 0:
		gm.Reason = ReasonServerErrors
	case gm.Confirmed:
		gm.Reason = ReasonConfirmed
	case moreThan(len(gm.Ejecting), gm.Callers, q):
		gm.Reason = ReasonTrafficQuorum
	}
	gm.InRotation = gm.Reason == ""
	return gm
}

func state(r GroupResult, minHealthy int) string {
	switch {
	case r.BreakerOpen:
		return StateDegraded
	case len(r.Rotation) == 0:
		return StateInactive
	case len(r.Rotation) >= max(minHealthy, 1):
		return StateHealthy
	}
	return StatePartial
}
