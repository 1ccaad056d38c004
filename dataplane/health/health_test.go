package health

import (
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/clock"
)

func TestStateMachine(t *testing.T) {
	type step struct {
		op        string // fail, pass, init, stop, kill
		wantState State
		wantTrans bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first passing probe makes a cold member ready", []step{{"pass", Ready, true}}},
		{"three failures degrade a ready member", []step{
			{"pass", Ready, true}, {"fail", Ready, false}, {"fail", Ready, false}, {"fail", Degraded, true}, {"fail", Degraded, false},
		}},
		{"a passing probe while degraded re-initializes, then ready", []step{
			{"fail", Cold, false}, {"fail", Cold, false}, {"fail", Degraded, true}, {"pass", Initializing, true}, {"init", Ready, true},
		}},
		{"a success in between resets the count", []step{
			{"pass", Ready, true}, {"fail", Ready, false}, {"fail", Ready, false}, {"pass", Ready, false}, {"fail", Ready, false}, {"fail", Ready, false},
		}},
		{"an opened session makes a cold member ready", []step{{"init", Ready, true}}},
		{"an idle stop makes a ready member cold", []step{{"pass", Ready, true}, {"stop", Cold, true}}},
		{"dead is final", []step{{"kill", Dead, true}, {"pass", Dead, false}, {"fail", Dead, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(Config{Interval: 10 * time.Second, MaxConsecutiveFailures: 3}, clock.NewFake(time.Unix(0, 0)))
			for i, s := range tt.steps {
				var got []Transition
				switch s.op {
				case "fail":
					_, got = tr.ProbeFailed("refused")
				case "pass":
					got = tr.ProbePassed()
				case "init":
					got = tr.Initialized()
				case "stop":
					got = tr.Stopped()
				case "kill":
					got = tr.Kill()
				}
				if st := tr.State(); st != s.wantState || (len(got) > 0) != s.wantTrans {
					t.Fatalf("step %d (%s): state %s, transitions %v; want %s, transition %v", i, s.op, st, got, s.wantState, s.wantTrans)
				}
			}
		})
	}
}

func TestNextProbe(t *testing.T) {
	tr := New(Config{Interval: 10 * time.Second, MaxConsecutiveFailures: 3}, clock.NewFake(time.Unix(0, 0)))
	for _, r := range []struct {
		rnd  float64
		want time.Duration
	}{{0, 9 * time.Second}, {0.5, 10 * time.Second}, {0.999999, 11 * time.Second}} {
		got := tr.NextProbe(func() float64 { return r.rnd })
		if d := got - r.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("ready, jitter %v: next probe in %v, want %v (±10 %%)", r.rnd, got, r.want)
		}
	}
	// Degraded: 1, 2, 4, 8 s, then capped at the interval.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	tr.ProbeFailed("x")
	tr.ProbeFailed("x")
	for i, w := range want {
		tr.ProbeFailed("x")
		if got := tr.NextProbe(nil); got != w {
			t.Errorf("degraded, failure %d: next probe in %v, want %v", i+3, got, w)
		}
	}
}
