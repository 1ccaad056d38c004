package router

import (
	"fmt"
	"strings"

	"github.com/hangarmesh/hangar/dataplane/breaker"
)

// Unavailable is a group that cannot take a call now, and why.
type Unavailable struct {
	Group  string `json:"group"`
	Reason string `json:"reason"`
}

// Readiness reports whether the agent can serve (docs/design.md §3.4): ready
// unless every group it serves is unavailable, a group being unavailable
// when its breaker is OPEN or none of its members can take a call (each is
// out of local or global rotation, drained, or degraded by probes). An
// agent with no group is ready. unavailable lists the groups that cannot
// serve, in file order, even when others can.
func (r *Router) Readiness() (ready bool, unavailable []Unavailable) {
	global := r.global.Load()
	groups := 0
	for _, id := range r.fleet.Order {
		g, ok := r.groups[id]
		if !ok {
			continue
		}
		groups++
		if why := g.unavailable(global); why != "" {
			unavailable = append(unavailable, Unavailable{Group: id, Reason: why})
		}
	}
	return groups == 0 || len(unavailable) < groups, unavailable
}

// unavailable says why no call can be served by the group now, or "".
func (g *Group) unavailable(global *Global) string {
	if st := g.breaker.Status(); st.State == breaker.Open {
		return fmt.Sprintf("circuit breaker open until %s", st.HalfOpensAt.UTC().Format("15:04:05"))
	}
	var why []string
	for _, gm := range g.members {
		switch {
		case !global.inRotation(g.cfg.ID, gm.ID()):
			why = append(why, gm.ID()+": out of global rotation or drained")
		case !gm.healthy() || (global == nil && !gm.State().Serving()):
			why = append(why, gm.ID()+": "+gm.State().String())
		case !gm.rot.Eligible():
			why = append(why, gm.ID()+": out of local rotation")
		default:
			return ""
		}
	}
	return "no member can take a call (" + strings.Join(why, "; ") + ")"
}
