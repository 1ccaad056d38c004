package admin

import (
	"fmt"
	"slices"
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// InUseWindow is how recent a call must be for a removed group or member
// to count as carrying traffic: config apply refuses to remove it without
// force.
const InUseWindow = 10 * time.Minute

// removedInUse lists the groups, and the members of kept groups, that the
// new fleet removes and that an agent called in the InUseWindow before
// now, one sentence each, sorted.
func removedInUse(old, next *fleetfile.Fleet, agents []*hangarv1.AgentReport, now time.Time) []string {
	if old == nil || next == nil {
		return nil
	}
	groupCall, memberCall := lastCalls(agents)
	recent := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) <= InUseWindow }
	var out []string
	for id, g := range old.Groups {
		ng, kept := next.Groups[id]
		if !kept {
			if t := groupCall[id]; recent(t) {
				out = append(out, fmt.Sprintf("group %q is removed, and it carried calls %s ago", id, ago(now, t)))
			}
			continue
		}
		for _, m := range g.Members {
			if slices.ContainsFunc(ng.Members, func(n fleetfile.Member) bool { return n.ID == m.ID }) {
				continue
			}
			if t := memberCall[m.ID]; recent(t) {
				out = append(out, fmt.Sprintf("member %q is removed from group %q, and it carried calls %s ago", m.ID, id, ago(now, t)))
			}
		}
	}
	slices.Sort(out)
	return out
}

// lastCalls is, over every agent, the latest call by group and by member.
func lastCalls(agents []*hangarv1.AgentReport) (groups, members map[string]time.Time) {
	groups, members = map[string]time.Time{}, map[string]time.Time{}
	for _, ar := range agents {
		for _, g := range ar.GetReport().GetGroups() {
			if t := g.GetLastCall(); t != nil && t.AsTime().After(groups[g.GetGroup()]) {
				groups[g.GetGroup()] = t.AsTime()
			}
		}
		for _, m := range ar.GetReport().GetMembers() {
			if t := m.GetLastCall(); t != nil && t.AsTime().After(members[m.GetMember()]) {
				members[m.GetMember()] = t.AsTime()
			}
		}
	}
	return groups, members
}

func ago(now, t time.Time) string {
	d := max(now.Sub(t), 0)
	return d.Round(time.Second).String()
}
