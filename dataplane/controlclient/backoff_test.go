package controlclient

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		jitter func(time.Duration) time.Duration
		want   []time.Duration
	}{
		{"ceilings double up to the cap", func(d time.Duration) time.Duration { return d },
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second}},
		{"jitter applies to each ceiling", func(d time.Duration) time.Duration { return d / 4 },
			[]time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2500 * ms, 2500 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff{initial: initialBackoff, max: DefaultMaxBackoff, jitter: tt.jitter}
			var got []time.Duration
			for range tt.want {
				got = append(got, b.next())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
			b.reset()
			if d := b.next(); d != tt.want[0] {
				t.Errorf("after reset: %v, want %v", d, tt.want[0])
			}
		})
	}
}

func TestFullJitter(t *testing.T) {
	if d := fullJitter(0); d != 0 {
		t.Errorf("fullJitter(0) = %v", d)
	}
	const ceiling = 100 * time.Millisecond
	seen := map[bool]bool{} // below / above half the ceiling
	for range 1000 {
		d := fullJitter(ceiling)
		if d < 0 || d > ceiling {
			t.Fatalf("fullJitter(%v) = %v, outside [0, ceiling]", ceiling, d)
		}
		seen[d > ceiling/2] = true
	}
	if len(seen) != 2 {
		t.Errorf("1000 draws all fell on one side of half the ceiling: not jittered")
	}
}
