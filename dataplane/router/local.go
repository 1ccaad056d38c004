package router

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/rotation"
)

// MemberView is one member as this agent sees it, for reports to the
// control plane.
type MemberView struct {
	ID        string
	State     health.State
	Probed    bool     // this agent probes the member now
	EjectedIn []string // groups whose local rotation has it out
	// ServerEjectedIn lists the groups of EjectedIn where the ejection was
	// on server evidence (the member answered with errors).
	ServerEjectedIn     []string
	ConsecutiveFailures int
	LastCall            time.Time // zero: never called
}

// GroupView is one group's breaker as this agent sees it.
type GroupView struct {
	ID                  string
	Breaker             breaker.State
	ConsecutiveFailures int
	LastCall            time.Time
}

// LocalView returns this agent's view of every member and group, in file
// order.
func (r *Router) LocalView() ([]MemberView, []GroupView) {
	var members []MemberView
	var groups []GroupView
	for _, id := range r.fleet.Order {
		if m, ok := r.members[id]; ok {
			hs := m.health.Status()
			members = append(members, MemberView{
				ID: id, State: hs.State, Probed: m.probing.Load() && m.shouldProbe(),
				ConsecutiveFailures: hs.ConsecutiveFailures, LastCall: unixTime(m.lastCall.Load()),
			})
		}
		if g, ok := r.groups[id]; ok {
			bs := g.breaker.Status()
			groups = append(groups, GroupView{ID: id, Breaker: bs.State, ConsecutiveFailures: bs.ConsecutiveFailures,
				LastCall: unixTime(g.lastCall.Load())})
		}
	}
	for i := range members {
		for _, id := range r.fleet.Order {
			g, ok := r.groups[id]
			if !ok {
				continue
			}
			// Out only: once its ejection time has passed the member is on
			// probation here, and the control plane must let it back into
			// global rotation for this agent's trial calls to reach it.
			if gm := g.member(members[i].ID); gm != nil && gm.rot.Status().Phase == rotation.Out {
				members[i].EjectedIn = append(members[i].EjectedIn, id)
				if gm.serverEjected.Load() {
					members[i].ServerEjectedIn = append(members[i].ServerEjectedIn, id)
				}
			}
		}
	}
	return members, groups
}

// AssignProbes makes this agent probe only the listed members (the control
// plane spreads probes over the agents); members it stops probing keep
// their last state. A newly assigned member is probed at once.
func (r *Router) AssignProbes(members []string) {
	for id, m := range r.members {
		on := slices.Contains(members, id)
		if was := m.probing.Swap(on); on && !was {
			m.wake()
		}
	}
}

// Confirm probes member now with deadline, from this agent's vantage
// point, for the control plane (another agent ejected it on path
// evidence). A probe that passes is also evidence for this agent's own
// rotation and breakers.
func (r *Router) Confirm(ctx context.Context, member string, deadline time.Duration) error {
	m, ok := r.members[member]
	if !ok {
		return fmt.Errorf("unknown member %q", member)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	_, err := m.client.ListTools(ctx)
	return err
}

// ProbeAll makes this agent probe every member, as it does standalone or
// while no control-plane replica answers.
func (r *Router) ProbeAll() {
	for _, m := range r.members {
		if !m.probing.Swap(true) {
			m.wake()
		}
	}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
