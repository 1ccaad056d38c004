package cpbench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	msOf := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		agents  int
		want    summary
	}{
		{"every agent", msOf(5, 1, 4, 2, 3), 5, summary{Acked: 5, P50Ms: 3, P99Ms: 5, MaxMs: 5}},
		{"100 agents", msOf(make([]int, 100)...), 100, summary{Acked: 100}},
		{"one never ACKed", msOf(1, 2, 3), 4, summary{Acked: 3, P50Ms: 2, P99Ms: -1, MaxMs: -1}},
		{"none ACKed", nil, 3, summary{P50Ms: -1, P99Ms: -1, MaxMs: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarize(tc.samples, tc.agents)); diff != "" {
				t.Errorf("summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMedianRoundPutsNeverLast(t *testing.T) {
	rounds := []summary{{P99Ms: -1}, {P99Ms: 30}, {P99Ms: 10}, {P99Ms: 20}, {P99Ms: -1}}
	if got := median(rounds); got.P99Ms != 30 {
		t.Errorf("median 99 %% time %v, want 30 (10, 20, 30, never, never)", got.P99Ms)
	}
	if got := median(rounds[1:4]); got.P99Ms != 20 {
		t.Errorf("median 99 %% time %v, want 20", got.P99Ms)
	}
}

func TestValidate(t *testing.T) {
	ok := Options{Agents: 1000, Conns: 8, Batch: 1000, Rounds: 5, Timeout: time.Second, Replicas: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v): %v", ok, err)
	}
	for _, bad := range []func(*Options){
		func(o *Options) { o.Agents = 1 },
		func(o *Options) { o.Conns = 0 },
		func(o *Options) { o.Conns = 2000 },
		func(o *Options) { o.Rounds = 0 },
		func(o *Options) { o.Timeout = 0 },
		func(o *Options) { o.Replicas = 0 },
		func(o *Options) { o.Steady = -time.Second },
	} {
		o := ok
		bad(&o)
		if o.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
		}
	}
}

func TestLargeFleet(t *testing.T) {
	if largeFleetYAML != generateLargeFleet() {
		t.Fatal("testdata/fleet-large.yaml is not generateLargeFleet's output: regenerate it")
	}
	others, members, err := otherGroups(largeFleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	servers := 0
	for _, m := range members {
		servers += len(m)
	}
	if len(others) < 100 || servers < 300 || len(largeFleetYAML) < 80<<10 {
		t.Errorf("large fleet: %d groups besides the recipe's, %d members, %d bytes; want ≥ 100, ≥ 300, ≥ 80 KiB",
			len(others), servers, len(largeFleetYAML))
	}
}
