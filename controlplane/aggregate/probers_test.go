package aggregate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProbers(t *testing.T) {
	five := []string{"e", "c", "a", "d", "b"}
	tests := []struct {
		name       string
		candidates []string
		n          int
		want       []string // nil: check only the size and that the result is sorted
		wantLen    int
	}{
		{name: "no candidates", n: 2},
		{name: "n zero", candidates: five, n: 0},
		{name: "n negative", candidates: five, n: -1},
		{name: "n capped at the candidates, sorted", candidates: five, n: 9, want: []string{"a", "b", "c", "d", "e"}},
		{name: "duplicates count once", candidates: []string{"b", "a", "b", "a"}, n: 3, want: []string{"a", "b"}},
		{name: "two of five", candidates: five, n: 2, wantLen: 2},
		{name: "one of five", candidates: five, n: 1, wantLen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.candidates)
			got := Probers("member", in, tt.n)
			if !slices.Equal(in, tt.candidates) {
				t.Errorf("Probers modified candidates: %v", in)
			}
			if tt.want != nil || tt.wantLen == 0 {
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("Probers (-want +got):\n%s", d)
				}
				return
			}
			if len(got) != tt.wantLen || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("Probers = %v, want %d distinct sorted ids", got, tt.wantLen)
			}
			for _, p := range got {
				if !slices.Contains(tt.candidates, p) {
					t.Errorf("Probers = %v: %q is not a candidate", got, p)
				}
			}
			rev := slices.Clone(tt.candidates)
			slices.Reverse(rev)
			if again := Probers("member", append(rev, rev...), tt.n); !slices.Equal(again, got) {
				t.Errorf("Probers depends on candidate order: %v, then %v", got, again)
			}
		})
	}
}

func agentIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%d", i)
	}
	return ids
}

func memberIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("mcp-server-%d", i)
	}
	return ids
}

// assign is the set of (member, agent) prober slots.
func assign(members, agents []string, n int) map[[2]string]bool {
	slots := map[[2]string]bool{}
	for _, m := range members {
		for _, a := range Probers(m, agents, n) {
			slots[[2]string{m, a}] = true
		}
	}
	return slots
}

// TestProbersStable: an 11th agent joining 10 takes about a share of the
// slots and moves nothing between the others; an agent leaving moves only
// its own slots.
func TestProbersStable(t *testing.T) {
	const n = 2
	members, ten := memberIDs(1000), agentIDs(10)
	eleven := append(slices.Clone(ten), "agent-new")
	before, after := assign(members, ten, n), assign(members, eleven, n)

	moved := 0
	for slot := range after {
		if !before[slot] {
			moved++
			if slot[1] != "agent-new" {
				t.Errorf("slot %v moved to an old agent", slot)
			}
		}
	}
	ideal := len(members) * n / len(eleven) // the new agent's fair share
	t.Logf("adding an 11th agent moved %d of %d slots (ideal %d)", moved, len(members)*n, ideal)
	if moved > 2*ideal || moved == 0 {
		t.Errorf("adding an 11th agent moved %d slots, want 1..%d (2× ideal)", moved, 2*ideal)
	}

	nine := ten[1:]
	for slot := range assign(members, nine, n) {
		if !before[slot] && !before[[2]string{slot[0], ten[0]}] {
			t.Errorf("removing %s moved slot %v, which it did not hold", ten[0], slot)
		}
	}
}

// TestProbersSpread: over 1000 members and 10 agents each agent gets a
// near-even share of the 2000 prober slots.
func TestProbersSpread(t *testing.T) {
	agents := agentIDs(10)
	load := map[string]int{}
	for slot := range assign(memberIDs(1000), agents, 2) {
		load[slot[1]]++
	}
	for _, a := range agents {
		if load[a] < 150 || load[a] > 250 {
			t.Errorf("agent %s probes %d of 2000 slots, want 150..250", a, load[a])
		}
	}
	t.Logf("load per agent: %v", load)
}
