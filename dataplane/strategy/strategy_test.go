package strategy

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var names = []string{"priority", "round_robin", "weighted_round_robin", "least_connections", "random"}

func mustNew(t testing.TB, name string, seed uint64) Strategy {
	t.Helper()
	s, err := New(name, rand.New(rand.NewPCG(seed, seed)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(cands []Candidate) string {
	var b strings.Builder
	for _, c := range cands {
		b.WriteString(c.ID)
	}
	return b.String()
}

// orders calls Order n times on the same input and returns each result's IDs.
func orders(s Strategy, cands []Candidate, n int) []string {
	var got []string
	for range n {
		got = append(got, ids(s.Order(cands)))
	}
	return got
}

func TestNew(t *testing.T) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if s, err := New(name, nil); err != nil || s == nil {
				t.Fatalf("New(%q) = %v, %v", name, s, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := New("fastest", nil)
		if !errors.Is(err, ErrUnknown) {
			t.Fatalf("New(fastest) error %v, want ErrUnknown", err)
		}
		for _, name := range names {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not list %q", err, name)
			}
		}
	})
}

// TestOrderContract checks what every strategy promises: the result is a
// permutation of the input, the input is untouched, empty stays empty.
func TestOrderContract(t *testing.T) {
	cands := []Candidate{
		{ID: "a", Priority: 2, Weight: 3, InFlight: 1},
		{ID: "b", Priority: 1, Weight: 1, InFlight: 0},
		{ID: "c", Priority: 3, Weight: 0, InFlight: 4}, // weight below 1 counts as 1
		{ID: "d", Priority: 1, Weight: 100, InFlight: 0},
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name, 1)
			in := slices.Clone(cands)
			for range 50 {
				got := s.Order(in)
				if diff := cmp.Diff(cands, in); diff != "" {
					t.Fatalf("Order modified its input (-before +after):\n%s", diff)
				}
				sorted := slices.Clone(got)
				slices.SortFunc(sorted, func(a, b Candidate) int { return strings.Compare(a.ID, b.ID) })
				if diff := cmp.Diff(cands, sorted); diff != "" {
					t.Fatalf("Order result is not a permutation (-input +result):\n%s", diff)
				}
			}
			if got := s.Order(nil); len(got) != 0 {
				t.Errorf("Order(nil) = %v, want empty", got)
			}
			if got := ids(s.Order(cands[:1])); got != "a" {
				t.Errorf("Order of one = %q, want a", got)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"primary first", []Candidate{{ID: "p", Priority: 1}, {ID: "b", Priority: 2}}, "pb"},
		{"backup alone", []Candidate{{ID: "b", Priority: 2}}, "b"},
		{"lowest number first whatever the input order", []Candidate{{ID: "b", Priority: 2}, {ID: "p", Priority: 1}}, "pb"},
		{"ties keep input order", []Candidate{
			{ID: "a", Priority: 2}, {ID: "b", Priority: 1}, {ID: "c", Priority: 2}, {ID: "d", Priority: 1}, {ID: "e", Priority: 3},
		}, "bdace"},
	}
	s := mustNew(t, "priority", 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Stateless: the same answer every time.
			for i, got := range orders(s, tt.cands, 3) {
				if got != tt.want {
					t.Errorf("call %d: Order = %q, want %q", i, got, tt.want)
				}
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	abc := []Candidate{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	ac := []Candidate{{ID: "a"}, {ID: "c"}}
	s := mustNew(t, "round_robin", 1)
	tests := []struct {
		name  string
		cands []Candidate
		want  []string
	}{
		{"rotates the start", abc, []string{"abc", "bca", "cab", "abc", "bca", "cab"}},
		// the counter is at 6: 6%2 = 0
		{"a member leaves", ac, []string{"ac", "ca", "ac", "ca"}},
		// the counter is at 10: 10%3 = 1
		{"it comes back", abc, []string{"bca", "cab", "abc"}},
	}
	for _, tt := range tests { // sequential: each case continues the counter
		if diff := cmp.Diff(tt.want, orders(s, tt.cands, len(tt.want))); diff != "" {
			t.Errorf("%s: orders (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	abc := []Candidate{{ID: "a", Weight: 5}, {ID: "b", Weight: 1}, {ID: "c", Weight: 1}}
	cba := []Candidate{abc[2], abc[1], abc[0]}

	t.Run("nginx sequence and failover order", func(t *testing.T) {
		s := mustNew(t, "weighted_round_robin", 1)
		// Picks a a b a c a a; the rest by current weight after the pick.
		cycle := []string{"abc", "abc", "bca", "acb", "cab", "abc", "abc"}
		want := append(slices.Clone(cycle), cycle...)
		if diff := cmp.Diff(want, orders(s, abc, 14)); diff != "" {
			t.Errorf("two cycles (-want +got):\n%s", diff)
		}
	})

	t.Run("exactly 5:1:1 in every 7 calls", func(t *testing.T) {
		s := mustNew(t, "weighted_round_robin", 1)
		count := map[byte]int{}
		for i := range 3003 {
			count[s.Order(abc)[0].ID[0]]++
			if (i+1)%7 == 0 {
				if diff := cmp.Diff(map[byte]int{'a': 5, 'b': 1, 'c': 1}, count); diff != "" {
					t.Fatalf("calls %d..%d: picks (-want +got):\n%s", i-6, i, diff)
				}
				clear(count)
			}
		}
	})

	t.Run("state follows IDs not positions", func(t *testing.T) {
		// Reversing the input must not change the picks, except where the
		// current weights tie (call 3: b and c), which goes to the first in
		// input order.
		s := mustNew(t, "weighted_round_robin", 1)
		var picks string
		for i := range 7 {
			in := cba
			if i == 2 {
				in = abc
			}
			picks += s.Order(in)[0].ID
		}
		if picks != "aabacaa" {
			t.Errorf("picks = %q, want aabacaa", picks)
		}
	})

	t.Run("a member that leaves keeps its credit", func(t *testing.T) {
		s := mustNew(t, "weighted_round_robin", 1)
		ab := []Candidate{{ID: "a", Weight: 1}, {ID: "b", Weight: 1}}
		got := []string{
			ids(s.Order(ab)),     // a=1 b=1 → a (a=-1)
			ids(s.Order(ab[1:])), // b=2, total 1 → b (b=1)
			ids(s.Order(ab)),     // a=0 b=2 → b (b=0)
			ids(s.Order(ab)),     // a=1 b=1 → a
		}
		if diff := cmp.Diff([]string{"ab", "b", "ba", "ab"}, got); diff != "" {
			t.Errorf("orders (-want +got):\n%s", diff)
		}
	})
}

func TestLeastConnections(t *testing.T) {
	tests := []struct {
		name  string
		cands []Candidate
		want  []string
	}{
		{
			name:  "lowest in-flight first",
			cands: []Candidate{{ID: "a", InFlight: 3}, {ID: "b", InFlight: 1}, {ID: "c", InFlight: 2}},
			want:  []string{"bca", "bca", "bca"},
		},
		{
			name:  "ties rotate among the least loaded",
			cands: []Candidate{{ID: "a", InFlight: 2}, {ID: "b", InFlight: 0}, {ID: "c", InFlight: 0}, {ID: "d", InFlight: 1}},
			want:  []string{"bcda", "cbda", "bcda", "cbda"},
		},
		{
			name:  "all equal is round robin",
			cands: []Candidate{{ID: "a"}, {ID: "b"}, {ID: "c"}},
			want:  []string{"abc", "bca", "cab", "abc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, "least_connections", 1)
			if diff := cmp.Diff(tt.want, orders(s, tt.cands, len(tt.want))); diff != "" {
				t.Errorf("orders (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("equal members share the load", func(t *testing.T) {
		s := mustNew(t, "least_connections", 1)
		cands := []Candidate{{ID: "a", InFlight: 5}, {ID: "b", InFlight: 2}, {ID: "c", InFlight: 2}, {ID: "d", InFlight: 2}}
		count := map[string]int{}
		for range 300 {
			count[s.Order(cands)[0].ID]++
		}
		if diff := cmp.Diff(map[string]int{"b": 100, "c": 100, "d": 100}, count); diff != "" {
			t.Errorf("picks (-want +got):\n%s", diff)
		}
	})
}

func TestRandom(t *testing.T) {
	const n = 70000
	cands := []Candidate{{ID: "a", Weight: 5}, {ID: "b", Weight: 1}, {ID: "c", Weight: 1}}
	s := mustNew(t, "random", 42)
	var first, second [3]int
	for range n {
		got := s.Order(cands)
		first[got[0].ID[0]-'a']++
		second[got[1].ID[0]-'a']++
	}
	// P(second = a) = 2/7 × 5/6; P(second = b) = 5/7 × 1/2 + 1/7 × 1/6.
	tests := []struct {
		name  string
		count int
		want  float64
	}{
		{"a first", first[0], 5.0 / 7},
		{"b first", first[1], 1.0 / 7},
		{"c first", first[2], 1.0 / 7},
		{"a second", second[0], 10.0 / 42},
		{"b second", second[1], 16.0 / 42},
		{"c second", second[2], 16.0 / 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := float64(tt.count) / n; math.Abs(got-tt.want) > 0.01 {
				t.Errorf("frequency %.4f, want %.4f ± 0.01", got, tt.want)
			}
		})
	}

	t.Run("same seed same orders", func(t *testing.T) {
		x, y := mustNew(t, "random", 7), mustNew(t, "random", 7)
		if diff := cmp.Diff(orders(x, cands, 20), orders(y, cands, 20)); diff != "" {
			t.Errorf("orders differ (-x +y):\n%s", diff)
		}
	})
}

// TestConcurrentOrder runs each strategy from several goroutines, for the
// race detector, and checks the stateful ones still divide calls exactly.
func TestConcurrentOrder(t *testing.T) {
	cands := []Candidate{{ID: "a", Weight: 2}, {ID: "b", Weight: 1}, {ID: "c", Weight: 1}}
	want := map[string]map[string]int{
		"priority":             {"a": 800},
		"round_robin":          {"a": 267, "b": 267, "c": 266},
		"weighted_round_robin": {"a": 400, "b": 200, "c": 200},
		"least_connections":    {"a": 267, "b": 267, "c": 266},
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name, 1)
			var (
				mu    sync.Mutex
				count = map[string]int{}
				wg    sync.WaitGroup
			)
			for range 8 {
				wg.Go(func() {
					for range 100 {
						id := s.Order(cands)[0].ID
						mu.Lock()
						count[id]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if w, ok := want[name]; ok {
				if diff := cmp.Diff(w, count); diff != "" {
					t.Errorf("picks (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestOrderAllocs(t *testing.T) {
	cands := []Candidate{{ID: "a", Weight: 5, Priority: 2, InFlight: 1}, {ID: "b", Weight: 1, Priority: 1}, {ID: "c", Weight: 1, Priority: 2}}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name, 1)
			s.Order(cands) // first sight of the IDs may grow state
			if got := testing.AllocsPerRun(100, func() { s.Order(cands) }); got > 1 {
				t.Errorf("Order allocates %v times per call, want at most 1", got)
			}
		})
	}
}

func BenchmarkOrder(b *testing.B) {
	cands := []Candidate{{ID: "a", Weight: 5, Priority: 2, InFlight: 1}, {ID: "b", Weight: 1, Priority: 1}, {ID: "c", Weight: 1, Priority: 2}}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, name, 1)
			b.ReportAllocs()
			for b.Loop() {
				s.Order(cands)
			}
		})
	}
}
