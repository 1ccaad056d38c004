package router

import "slices"

// Global is the fleet-wide view pushed by the control plane: a second source
// of truth merged with each agent's local state (docs/design.md §3.4). A nil Global
// means the agent runs standalone and its local view is the only one.
type Global struct {
	// Version is the snapshot version the view came from.
	Version uint64
	// Rotation lists, per group id, the members in global rotation. A group
	// missing from the map has no global opinion: all its members count as in.
	Rotation map[string][]string
	// Drained lists, per group id, members an operator took out.
	Drained map[string][]string
	// BreakerOpen names groups whose breaker is open fleet-wide.
	BreakerOpen map[string]bool
}

// inRotation reports whether member is in group's global rotation.
func (g *Global) inRotation(group, member string) bool {
	if g == nil {
		return true
	}
	if g.Rotation != nil {
		members, ok := g.Rotation[group]
		if ok && !slices.Contains(members, member) {
			return false
		}
	}
	return !slices.Contains(g.Drained[group], member)
}
