package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangarmesh/hangar/internal/clock"
)

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name         string
		initial, max time.Duration
		jitter       Jitter
		want         []time.Duration
	}{
		{"ceilings double up to the cap", 100 * ms, 10 * time.Second, nil,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second}},
		{"jitter applies to each ceiling", 100 * ms, 10 * time.Second, func(d time.Duration) time.Duration { return d / 4 },
			[]time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2500 * ms, 2500 * ms}},
		{"a cap below the initial delay caps the first one too", 100 * ms, 30 * ms, nil,
			[]time.Duration{30 * ms, 30 * ms, 30 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(nil, tt.initial, tt.max, tt.jitter)
			var got []time.Duration
			for range tt.want {
				got = append(got, b.Next())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
			b.Reset()
			if d := b.Next(); d != tt.want[0] {
				t.Errorf("after reset: %v, want %v", d, tt.want[0])
			}
		})
	}
}

func TestJitter(t *testing.T) {
	const ceiling = 100 * time.Millisecond
	for _, tt := range []struct {
		name   string
		jitter Jitter
		low    time.Duration
	}{{"Full", Full, 0}, {"Equal", Equal, ceiling / 2}} {
		t.Run(tt.name, func(t *testing.T) {
			if d := tt.jitter(0); d != 0 {
				t.Errorf("%s(0) = %v", tt.name, d)
			}
			mid := tt.low + (ceiling-tt.low)/2
			seen := map[bool]bool{} // below / above the middle of the range
			for range 1000 {
				d := tt.jitter(ceiling)
				if d < tt.low || d > ceiling {
					t.Fatalf("%s(%v) = %v, outside [%v, %v]", tt.name, ceiling, d, tt.low, ceiling)
				}
				seen[d > mid] = true
			}
			if len(seen) != 2 {
				t.Errorf("1000 draws all fell on one side of the middle: not jittered")
			}
		})
	}
}

// Wait waits on the injected clock: nothing happens until it advances by
// the delay, and a cancelled context ends the wait.
func TestWaitOnClock(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	b := New(clk, time.Second, time.Minute, nil)
	done := make(chan bool)
	go func() { done <- b.Wait(context.Background()) }()
	clk.WaitForTimers(1)
	clk.Advance(999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Wait returned before the delay passed on the clock")
	default:
	}
	clk.Advance(time.Millisecond)
	if !<-done {
		t.Error("Wait = false after the delay passed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Wait(ctx) }()
	clk.WaitForTimers(1)
	cancel()
	if <-done {
		t.Error("Wait = true after ctx ended")
	}
}
