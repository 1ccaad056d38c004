package server

import (
	"testing"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
)

func views(breakers map[string]aggregate.Breaker) []aggregate.AgentView {
	var out []aggregate.AgentView
	for _, id := range sortedKeys(breakers) {
		out = append(out, aggregate.AgentView{ID: id, Groups: map[string]aggregate.GroupView{"g": {Breaker: breakers[id]}}})
	}
	return out
}

// After an operator resets a group's breaker, the open votes it overrode
// count as closed until each agent reports its breaker closed; later
// votes count again.
func TestIgnoreStaleOpen(t *testing.T) {
	d := &decider{reset: []string{"g"}}
	v := views(map[string]aggregate.Breaker{"a": aggregate.Open, "b": aggregate.Open, "c": aggregate.Closed})
	d.ignoreStaleOpen(v)
	for _, av := range v {
		if av.Groups["g"].Breaker != aggregate.Closed {
			t.Fatalf("right after the reset %s still votes %s", av.ID, av.Groups["g"].Breaker)
		}
	}
	// a has applied the reset (closed); b has not reported since.
	v = views(map[string]aggregate.Breaker{"a": aggregate.Closed, "b": aggregate.Open, "c": aggregate.Closed})
	d.ignoreStaleOpen(v)
	if v[1].Groups["g"].Breaker != aggregate.Closed {
		t.Fatalf("b's stale open vote counted")
	}
	// a's breaker opens again after it applied the reset: a real vote.
	v = views(map[string]aggregate.Breaker{"a": aggregate.Open, "b": aggregate.Closed, "c": aggregate.Closed})
	d.ignoreStaleOpen(v)
	if v[0].Groups["g"].Breaker != aggregate.Open {
		t.Fatalf("a's new open vote was ignored")
	}
	if len(d.staleOpen) != 0 {
		t.Fatalf("stale votes left after every agent reported closed: %v", d.staleOpen)
	}
}
