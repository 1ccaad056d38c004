package router

import (
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/rotation"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// ServerStatus is a point-in-time view of one member, shaped like MCP
// Hangar's hangar_list / hangar_details entries.
type ServerStatus struct {
	ID                  string     `json:"mcp_server"`
	Mode                string     `json:"mode"`
	Description         string     `json:"description,omitempty"`
	State               string     `json:"state"`
	Alive               bool       `json:"alive"`
	ToolsCount          int        `json:"tools_count"`
	HealthStatus        string     `json:"health_status"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastCheck           *time.Time `json:"last_check,omitempty"`
	LastCheckOK         bool       `json:"last_check_ok"`
	LastError           string     `json:"last_error,omitempty"`
	InFlight            int64      `json:"in_flight"`
}

// Status returns the member's current status.
func (m *Member) Status() ServerStatus {
	hs := m.health.Status()
	st := ServerStatus{
		ID:                  m.cfg.ID,
		Mode:                string(m.cfg.Mode),
		Description:         m.cfg.Description,
		State:               hs.State.String(),
		Alive:               m.client.Connected(),
		ToolsCount:          len(m.client.Tools()),
		HealthStatus:        healthWord(hs.State),
		ConsecutiveFailures: hs.ConsecutiveFailures,
		LastCheckOK:         hs.LastProbeOK,
		LastError:           hs.LastError,
		InFlight:            m.inFlight.Load(),
	}
	if !hs.LastProbe.IsZero() {
		t := hs.LastProbe.UTC()
		st.LastCheck = &t
	}
	return st
}

func healthWord(s health.State) string {
	switch s {
	case health.Ready:
		return "healthy"
	case health.Degraded, health.Dead:
		return "unhealthy"
	}
	return "unknown"
}

// MemberStatus is one member as seen by a group.
type MemberStatus struct {
	ID                  string `json:"id"`
	State               string `json:"state"`
	InRotation          bool   `json:"in_rotation"`
	Rotation            string `json:"rotation"` // in, out or probation
	Weight              int    `json:"weight"`
	Priority            int    `json:"priority"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	InFlight            int64  `json:"in_flight"`
}

// GroupStatus is a point-in-time view of a group, shaped like MCP Hangar's
// hangar_group_list entries.
type GroupStatus struct {
	ID             string         `json:"group_id"`
	Description    string         `json:"description,omitempty"`
	State          string         `json:"state"` // healthy, partial, inactive or degraded
	Strategy       string         `json:"strategy"`
	MinHealthy     int            `json:"min_healthy"`
	HealthyCount   int            `json:"healthy_count"`
	TotalMembers   int            `json:"total_members"`
	IsAvailable    bool           `json:"is_available"`
	CircuitOpen    bool           `json:"circuit_open"`
	Breaker        string         `json:"circuit_breaker_state"`
	ActiveMember   string         `json:"active_member,omitempty"`
	Members        []MemberStatus `json:"members"`
	GlobalSnapshot uint64         `json:"global_snapshot_version,omitempty"`
}

// Status returns the group's current status under the global view.
func (g *Group) status(global *Global) GroupStatus {
	bs := g.breaker.Status()
	st := GroupStatus{
		ID:           g.cfg.ID,
		Description:  g.cfg.Description,
		Strategy:     string(g.cfg.Strategy),
		MinHealthy:   g.cfg.MinHealthy,
		TotalMembers: len(g.members),
		CircuitOpen:  bs.State == breaker.Open,
		Breaker:      bs.State.String(),
	}
	if global != nil {
		st.GlobalSnapshot = global.Version
	}
	for _, gm := range g.members {
		rs := gm.rot.Status()
		in := gm.healthy() && rs.Phase == rotation.In && global.inRotation(g.cfg.ID, gm.ID())
		if in {
			st.HealthyCount++
		}
		st.Members = append(st.Members, MemberStatus{
			ID:                  gm.ID(),
			State:               gm.State().String(),
			InRotation:          in,
			Rotation:            rs.Phase.String(),
			Weight:              gm.spec.Weight,
			Priority:            gm.spec.Priority,
			ConsecutiveFailures: rs.ConsecutiveFailures,
			InFlight:            gm.inFlight.Load(),
		})
	}
	if pick, _ := g.eligible(global); len(pick) > 0 {
		st.IsAvailable = bs.State != breaker.Open
		if g.cfg.Strategy == fleetfile.StrategyPriority {
			best := pick[0]
			for _, c := range pick[1:] {
				if c.Priority < best.Priority {
					best = c
				}
			}
			st.ActiveMember = best.ID
		}
	}
	switch {
	case bs.State == breaker.Open:
		st.State = "degraded"
	case st.HealthyCount == 0:
		st.State = "inactive"
	case st.HealthyCount >= max(g.cfg.MinHealthy, 1):
		st.State = "healthy"
	default:
		st.State = "partial"
	}
	return st
}

// Servers returns every member's status in file order.
func (r *Router) Servers() []ServerStatus {
	var out []ServerStatus
	for _, id := range r.fleet.Order {
		if m, ok := r.members[id]; ok {
			out = append(out, m.Status())
		}
	}
	return out
}

// Groups returns every group's status in file order.
func (r *Router) Groups() []GroupStatus {
	global := r.global.Load()
	var out []GroupStatus
	for _, id := range r.fleet.Order {
		if g, ok := r.groups[id]; ok {
			out = append(out, g.status(global))
		}
	}
	return out
}

// GroupStatus returns one group's status.
func (r *Router) GroupStatus(id string) (GroupStatus, bool) {
	g, ok := r.groups[id]
	if !ok {
		return GroupStatus{}, false
	}
	return g.status(r.global.Load()), true
}

// ResetBreaker closes a group's breaker (operator action); false for an unknown group.
func (r *Router) ResetBreaker(id string) bool {
	g, ok := r.groups[id]
	if ok {
		g.applyBreaker(g.breaker.Reset())
	}
	return ok
}
