package rotation

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hangarmesh/hangar/internal/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const s = time.Second

// step is one operation on a Tracker in TestTracker.
type step struct {
	// op is one of:
	//   begin, nobegin: Begin must admit (and the Call is kept under call) or refuse;
	//   ok, fail:       Finish the Call kept under call with a success or a failure;
	//   abandon:        Abandon the Call kept under call;
	//   eligible, ineligible: Eligible must answer true or false;
	//   advance:        advance the fake clock;
	//   reset:          Reset;
	//   probe:          ProbePassed for a probe started advance before now.
	op string
	// call names an admitted Call; "zero" is the zero Call.
	call    string
	advance time.Duration
	want    []Transition
	phase   string // effective phase after the step; "" skips the check
}

func tr(from, to Phase, at time.Duration, reason string) Transition {
	return Transition{From: from, To: to, At: t0.Add(at), Reason: reason}
}

// ejectAt admits two calls while In and fails both, ejecting the member at
// the given offset (with UnhealthyThreshold 2).
func ejectAt(at time.Duration) []step {
	return []step{
		{op: "begin", call: "x1"}, {op: "begin", call: "x2"},
		{op: "fail", call: "x1", phase: "in"},
		{op: "fail", call: "x2", want: []Transition{tr(In, Out, at, ReasonConsecutiveFailures)}, phase: "out"},
	}
}

func steps(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestTracker(t *testing.T) {
	cfg := Config{UnhealthyThreshold: 2, HealthyThreshold: 1, BaseEjection: 5 * s, MaxEjection: 60 * s}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "consecutive failures eject at once",
			cfg:  cfg,
			steps: []step{
				{op: "begin", call: "a"}, {op: "begin", call: "b"},
				{op: "fail", call: "a", phase: "in"},
				{op: "eligible"},
				{op: "fail", call: "b", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}, phase: "out"},
				{op: "ineligible"}, {op: "nobegin"},
			},
		},
		{
			name: "a success while in resets the failure count",
			cfg:  cfg,
			steps: []step{
				{op: "begin", call: "a"}, {op: "fail", call: "a"},
				{op: "begin", call: "b"}, {op: "ok", call: "b"},
				{op: "begin", call: "c"}, {op: "fail", call: "c", phase: "in"},
				{op: "begin", call: "d"},
				{op: "fail", call: "d", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
			},
		},
		{
			name: "ejection expires into probation with one trial at a time",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5*s - 1, phase: "out"},
				{op: "ineligible"}, {op: "nobegin"},
				{op: "advance", advance: 3, phase: "probation"}, // effective before anyone asks
				{op: "eligible", phase: "probation"},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}, phase: "probation"},
				{op: "ineligible"}, {op: "nobegin"}, {op: "nobegin"},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 5*s+2, ReasonProbationPassed)}, phase: "in"},
				{op: "begin"}, {op: "begin"},
			}),
		},
		{
			name: "probation failure doubles the ejection up to the cap",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 5*s, ReasonProbationFailed)}, phase: "out"},
				{op: "advance", advance: 10*s - 1}, {op: "nobegin"}, // 10 s
				{op: "advance", advance: 1},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 15*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 15*s, ReasonProbationFailed)}},
				{op: "advance", advance: 20 * s}, // 20 s
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 35*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 35*s, ReasonProbationFailed)}},
				{op: "advance", advance: 40*s - 1}, {op: "nobegin"}, // 40 s
				{op: "advance", advance: 1},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 75*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 75*s, ReasonProbationFailed)}},
				{op: "advance", advance: 60*s - 1}, {op: "nobegin"}, // capped: 60 s, not 80 s
				{op: "advance", advance: 1},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 135*s, ReasonEjectionExpired)}},
			}),
		},
		{
			name: "returning in forgets past ejections",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 5*s, ReasonProbationFailed)}},
				{op: "advance", advance: 10 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 15*s, ReasonEjectionExpired)}},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 15*s, ReasonProbationPassed)}},
			}, ejectAt(15*s), []step{
				{op: "advance", advance: 5*s - 1}, {op: "nobegin"}, // back to the base 5 s
				{op: "advance", advance: 1},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 20*s, ReasonEjectionExpired)}},
			}),
		},
		{
			name: "healthy threshold needs consecutive trial successes",
			cfg:  Config{UnhealthyThreshold: 1, HealthyThreshold: 3, BaseEjection: s, MaxEjection: s},
			steps: []step{
				{op: "begin", call: "a"},
				{op: "fail", call: "a", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
				{op: "advance", advance: s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, s, ReasonEjectionExpired)}},
				{op: "ok", call: "t", phase: "probation"},
				{op: "begin", call: "t"}, {op: "nobegin"},
				{op: "ok", call: "t", phase: "probation"},
				{op: "begin", call: "t"},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, s, ReasonProbationPassed)}},
			},
		},
		{
			name: "outcomes of calls sent before the ejection are ignored while out",
			cfg:  cfg,
			steps: []step{
				{op: "begin", call: "a"}, {op: "begin", call: "b"}, {op: "begin", call: "c"},
				{op: "begin", call: "d"}, {op: "begin", call: "e"},
				{op: "fail", call: "a"},
				{op: "fail", call: "b", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
				{op: "ok", call: "c", phase: "out"}, {op: "ok", call: "d", phase: "out"},
				{op: "fail", call: "e", phase: "out"},
				{op: "advance", advance: 5*s - 1}, {op: "nobegin"}, // not extended by the late failure
			},
		},
		{
			name: "a late outcome after the ejection expired neither decides nor takes the probation",
			cfg:  cfg,
			steps: steps([]step{{op: "begin", call: "late"}}, ejectAt(0), []step{
				{op: "advance", advance: 6 * s},
				{op: "fail", call: "late", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}, phase: "probation"},
				{op: "begin", call: "t"},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 6*s, ReasonProbationFailed)}},
				{op: "advance", advance: 10*s - 1}, {op: "nobegin"},
			}),
		},
		{
			name: "a stale failure during probation is ignored",
			cfg:  cfg,
			steps: steps([]step{{op: "begin", call: "late"}}, ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "fail", call: "late", phase: "probation"},
				{op: "nobegin"}, // the trial is still outstanding
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 5*s, ReasonProbationPassed)}, phase: "in"},
			}),
		},
		{
			name: "a stale success does not pass the probation",
			cfg:  cfg,
			steps: steps([]step{{op: "begin", call: "late"}}, ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "ok", call: "late", phase: "probation"},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, 5*s, ReasonProbationFailed)}, phase: "out"},
			}),
		},
		{
			name: "a trial of an earlier probation is ignored",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t1", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t1", want: []Transition{tr(Probation, Out, 5*s, ReasonProbationFailed)}},
				{op: "advance", advance: 10 * s},
				{op: "begin", call: "t2", want: []Transition{tr(Out, Probation, 15*s, ReasonEjectionExpired)}},
				{op: "fail", call: "t1", phase: "probation"},
				{op: "abandon", call: "t1"}, {op: "nobegin"}, // t2 keeps the slot
				{op: "ok", call: "t2", want: []Transition{tr(Probation, In, 15*s, ReasonProbationPassed)}},
			}),
		},
		{
			name: "a repeated finish of a trial is ignored",
			cfg:  Config{UnhealthyThreshold: 1, HealthyThreshold: 2, BaseEjection: s, MaxEjection: s},
			steps: []step{
				{op: "begin", call: "a"},
				{op: "fail", call: "a", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
				{op: "advance", advance: s},
				{op: "begin", call: "t1", want: []Transition{tr(Out, Probation, s, ReasonEjectionExpired)}},
				{op: "ok", call: "t1", phase: "probation"},
				{op: "ok", call: "t1", phase: "probation"}, // would pass the probation if counted
				{op: "begin", call: "t2"},
				{op: "fail", call: "t1", phase: "probation"}, {op: "abandon", call: "t1"},
				{op: "nobegin"}, // t2 keeps the slot
				{op: "ok", call: "t2", want: []Transition{tr(Probation, In, s, ReasonProbationPassed)}},
			},
		},
		{
			name: "abandon frees the trial slot",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t1", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "ineligible"}, {op: "nobegin"},
				{op: "abandon", call: "t1", phase: "probation"},
				{op: "abandon", call: "t1"}, // a second release is a no-op
				{op: "eligible"},
				{op: "begin", call: "t2"}, {op: "nobegin"},
				{op: "fail", call: "t1", phase: "probation"}, // the abandoned trial has no verdict
				{op: "ok", call: "t2", want: []Transition{tr(Probation, In, 5*s, ReasonProbationPassed)}},
			}),
		},
		{
			name: "abandon while in counts neither way",
			cfg:  cfg,
			steps: []step{
				{op: "begin", call: "a"}, {op: "begin", call: "b"}, {op: "begin", call: "c"},
				{op: "fail", call: "a"},
				{op: "abandon", call: "b", phase: "in"},
				{op: "fail", call: "c", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
			},
		},
		{
			name: "the zero call is never counted",
			cfg:  Config{UnhealthyThreshold: 1, HealthyThreshold: 1, BaseEjection: 5 * s},
			steps: []step{
				{op: "fail", call: "zero", phase: "in"}, {op: "abandon", call: "zero"},
				{op: "begin", call: "a"},
				{op: "fail", call: "a", want: []Transition{tr(In, Out, 0, ReasonConsecutiveFailures)}},
				{op: "advance", advance: 5 * s},
				{op: "fail", call: "zero", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}, phase: "probation"},
				{op: "begin", call: "t"},
				{op: "ok", call: "zero", phase: "probation"}, {op: "abandon", call: "zero"}, {op: "nobegin"},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 5*s, ReasonProbationPassed)}},
			},
		},
		{
			name: "reset brings an ejected member back",
			cfg:  cfg,
			steps: steps([]step{{op: "reset", phase: "in"}}, ejectAt(0), []step{
				{op: "reset", want: []Transition{tr(Out, In, 0, ReasonReset)}, phase: "in"},
				{op: "begin"}, {op: "begin"},
			}),
		},
		{
			name: "reset in probation frees the slot",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "reset", want: []Transition{
					tr(Out, Probation, 5*s, ReasonEjectionExpired),
					tr(Probation, In, 5*s, ReasonReset),
				}},
				{op: "begin", call: "a"}, {op: "fail", call: "a", phase: "in"},
			}),
		},
		{
			name: "outcomes of calls admitted before reset are ignored",
			cfg:  cfg,
			steps: steps([]step{
				{op: "begin", call: "a"}, {op: "begin", call: "b"},
				{op: "fail", call: "a"},
				{op: "reset", phase: "in"},
				{op: "fail", call: "b", phase: "in"},
				{op: "begin", call: "c"}, {op: "fail", call: "c", phase: "in"}, // the first counted failure
				{op: "begin", call: "e"}, {op: "ok", call: "e"},
			}, ejectAt(0), []step{
				{op: "advance", advance: 5 * s},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "reset", want: []Transition{tr(Probation, In, 5*s, ReasonReset)}},
				{op: "fail", call: "t", phase: "in"},
				{op: "begin", call: "d"}, {op: "fail", call: "d", phase: "in"}, // the first counted failure
			}),
		},
		{
			name: "a probe passing after the ejection starts probation at once",
			cfg:  cfg,
			steps: steps([]step{{op: "advance", advance: s}}, ejectAt(s), []step{
				{op: "advance", advance: 300 * time.Millisecond},
				{op: "probe", advance: 500 * time.Millisecond, phase: "out"}, // started before the ejection
				{op: "nobegin"},
				{op: "probe", advance: 100 * time.Millisecond,
					want: []Transition{tr(Out, Probation, 1300*time.Millisecond, ReasonProbePassed)}, phase: "probation"},
				{op: "probe", phase: "probation"},
				{op: "begin", call: "t"}, {op: "nobegin"},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 1300*time.Millisecond, ReasonProbationPassed)}},
				{op: "probe", phase: "in"},
			}),
		},
		{
			name: "a failed trial after a probe doubles the ejection",
			cfg:  cfg,
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: s},
				{op: "probe", want: []Transition{tr(Out, Probation, s, ReasonProbePassed)}},
				{op: "begin", call: "t"},
				{op: "fail", call: "t", want: []Transition{tr(Probation, Out, s, ReasonProbationFailed)}},
				{op: "advance", advance: 10*s - 1}, {op: "nobegin"},
				{op: "advance", advance: 1},
				{op: "begin", call: "t2", want: []Transition{tr(Out, Probation, 11*s, ReasonEjectionExpired)}},
			}),
		},
		{
			name: "zero config takes the defaults",
			steps: steps(ejectAt(0), []step{
				{op: "advance", advance: 5*s - 1}, {op: "nobegin"},
				{op: "advance", advance: 1},
				{op: "begin", call: "t", want: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)}},
				{op: "ok", call: "t", want: []Transition{tr(Probation, In, 5*s, ReasonProbationPassed)}},
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			tk := New(tt.cfg, clk)
			calls := map[string]Call{"zero": {}}
			last := In // To of the latest transition: the chain must not break
			for i, st := range tt.steps {
				var got []Transition
				call := func() Call {
					c, ok := calls[st.call]
					if !ok {
						t.Fatalf("step %d (%s): no call %q was admitted", i, st.op, st.call)
					}
					return c
				}
				switch st.op {
				case "begin", "nobegin":
					want := st.op == "begin"
					if el := eligible(t, tk); el != want {
						t.Fatalf("step %d: Eligible() = %v before Begin, want %v", i, el, want)
					}
					c, ok, ts := tk.Begin()
					if ok != want {
						t.Fatalf("step %d: Begin() ok = %v, want %v", i, ok, want)
					}
					if !ok && c != (Call{}) {
						t.Fatalf("step %d: refused Begin() returned %+v, want the zero Call", i, c)
					}
					if ok {
						calls[st.call] = c
					}
					got = ts
				case "ok", "fail":
					got = tk.Finish(call(), st.op == "ok")
				case "abandon":
					tk.Abandon(call())
				case "eligible", "ineligible":
					if el, want := eligible(t, tk), st.op == "eligible"; el != want {
						t.Fatalf("step %d: Eligible() = %v, want %v", i, el, want)
					}
				case "advance":
					clk.Advance(st.advance)
				case "reset":
					got = tk.Reset()
				case "probe":
					got = tk.ProbePassed(clk.Now().Add(-st.advance))
				default:
					t.Fatalf("step %d: unknown op %q", i, st.op)
				}
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Fatalf("step %d (%s %s): transitions (-want +got):\n%s", i, st.op, st.call, diff)
				}
				for _, tr := range got {
					if tr.From != last {
						t.Fatalf("step %d (%s %s): transition %+v does not follow %v", i, st.op, st.call, tr, last)
					}
					last = tr.To
				}
				if p := tk.Status().Phase; st.phase != "" && p.String() != st.phase {
					t.Fatalf("step %d (%s %s): phase %v, want %s", i, st.op, st.call, p, st.phase)
				}
			}
		})
	}
}

// eligible calls Eligible and fails the test if it changed the status.
func eligible(t *testing.T, tk *Tracker) bool {
	t.Helper()
	before := tk.Status()
	el := tk.Eligible()
	if diff := cmp.Diff(before, tk.Status()); diff != "" {
		t.Fatalf("Eligible() changed the status (-before +after):\n%s", diff)
	}
	return el
}

// TestEligibleChangesNothing checks that Eligible answers as Begin would,
// however often it is asked, and leaves the transition to Begin.
func TestEligibleChangesNothing(t *testing.T) {
	cfg := Config{UnhealthyThreshold: 1, HealthyThreshold: 2, BaseEjection: 5 * s, MaxEjection: time.Minute}
	eject := func(tk *Tracker) {
		c, _, _ := tk.Begin()
		tk.Finish(c, false)
	}
	tests := []struct {
		name      string
		setup     func(tk *Tracker, clk *clock.Fake)
		want      bool
		wantBegin []Transition // what the Begin after the Eligible calls returns
	}{
		{name: "in", setup: func(*Tracker, *clock.Fake) {}, want: true},
		{
			name: "out",
			setup: func(tk *Tracker, clk *clock.Fake) {
				eject(tk)
				clk.Advance(5*s - 1)
			},
		},
		{
			name: "out past its ejection",
			setup: func(tk *Tracker, clk *clock.Fake) {
				eject(tk)
				clk.Advance(6 * s)
			},
			want:      true,
			wantBegin: []Transition{tr(Out, Probation, 5*s, ReasonEjectionExpired)},
		},
		{
			name: "probation with the trial out",
			setup: func(tk *Tracker, clk *clock.Fake) {
				eject(tk)
				clk.Advance(5 * s)
				tk.Begin()
			},
		},
		{
			name: "probation between trials",
			setup: func(tk *Tracker, clk *clock.Fake) {
				eject(tk)
				clk.Advance(5 * s)
				c, _, _ := tk.Begin()
				tk.Finish(c, true)
			},
			want: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			tk := New(cfg, clk)
			tt.setup(tk, clk)
			for range 3 {
				if got := eligible(t, tk); got != tt.want {
					t.Fatalf("Eligible() = %v, want %v", got, tt.want)
				}
			}
			_, ok, ts := tk.Begin()
			if ok != tt.want {
				t.Errorf("Begin() ok = %v after Eligible() = %v", ok, tt.want)
			}
			if diff := cmp.Diff(tt.wantBegin, ts); diff != "" {
				t.Errorf("Begin() transitions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	cfg := Config{UnhealthyThreshold: 2, HealthyThreshold: 2, BaseEjection: 5 * s, MaxEjection: time.Minute}
	call := func(tk *Tracker, success bool) {
		c, _, _ := tk.Begin()
		tk.Finish(c, success)
	}
	tests := []struct {
		name  string
		setup func(tk *Tracker, clk *clock.Fake)
		want  Status
	}{
		{
			name:  "new",
			setup: func(*Tracker, *clock.Fake) {},
			want:  Status{Phase: In},
		},
		{
			name:  "in with a success",
			setup: func(tk *Tracker, _ *clock.Fake) { call(tk, true) },
			want:  Status{Phase: In, ConsecutiveSuccesses: 1},
		},
		{
			name: "out",
			setup: func(tk *Tracker, clk *clock.Fake) {
				call(tk, false)
				call(tk, false)
				clk.Advance(s)
			},
			want: Status{Phase: Out, ConsecutiveFailures: 2, EjectedUntil: t0.Add(5 * s), Ejections: 1},
		},
		{
			name: "out past its ejection, not yet observed",
			setup: func(tk *Tracker, clk *clock.Fake) {
				call(tk, false)
				call(tk, false)
				clk.Advance(5 * s)
			},
			want: Status{Phase: Probation, ConsecutiveFailures: 2, EjectedUntil: t0.Add(5 * s), Ejections: 1},
		},
		{
			name: "probation after a success",
			setup: func(tk *Tracker, clk *clock.Fake) {
				call(tk, false)
				call(tk, false)
				clk.Advance(5 * s)
				call(tk, true)
			},
			want: Status{Phase: Probation, ConsecutiveSuccesses: 1, EjectedUntil: t0.Add(5 * s), Ejections: 1},
		},
		{
			name: "probation after an abandoned trial and a stale failure",
			setup: func(tk *Tracker, clk *clock.Fake) {
				late, _, _ := tk.Begin()
				call(tk, false)
				call(tk, false)
				clk.Advance(5 * s)
				c, _, _ := tk.Begin()
				tk.Abandon(c)
				tk.Finish(late, false)
			},
			want: Status{Phase: Probation, ConsecutiveFailures: 2, EjectedUntil: t0.Add(5 * s), Ejections: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			tk := New(cfg, clk)
			tt.setup(tk, clk)
			if diff := cmp.Diff(tt.want, tk.Status()); diff != "" {
				t.Errorf("Status() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEjection(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
		want time.Duration
	}{
		{"first", Config{BaseEjection: time.Second, MaxEjection: time.Minute}, 1, time.Second},
		{"third", Config{BaseEjection: time.Second, MaxEjection: time.Minute}, 3, 4 * time.Second},
		{"capped", Config{BaseEjection: time.Second, MaxEjection: time.Minute}, 7, time.Minute},
		{"many", Config{BaseEjection: time.Second, MaxEjection: time.Minute}, 1000, time.Minute},
		{"max below base", Config{BaseEjection: time.Minute, MaxEjection: time.Second}, 1, time.Second},
		{"no overflow", Config{BaseEjection: time.Hour, MaxEjection: math.MaxInt64}, 200, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.withDefaults().ejection(tt.n); got != tt.want {
				t.Errorf("ejection(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestPhaseString(t *testing.T) {
	for p, want := range map[Phase]string{In: "in", Out: "out", Probation: "probation", Phase(9): "Phase(9)"} {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d).String() = %q, want %q", int(p), got, want)
		}
	}
}

// TestConcurrentProbation races callers against a member in probation: only
// one of them may get the trial call.
func TestConcurrentProbation(t *testing.T) {
	clk := clock.NewFake(t0)
	tk := New(Config{UnhealthyThreshold: 1, HealthyThreshold: 2}, clk)
	c, _, _ := tk.Begin()
	tk.Finish(c, false)
	clk.Advance(time.Minute)
	for round := range 3 {
		var (
			mu       sync.Mutex
			admitted []Call
			wg       sync.WaitGroup
		)
		for range 16 {
			wg.Go(func() {
				if c, ok, _ := tk.Begin(); ok {
					mu.Lock()
					admitted = append(admitted, c)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if round < 2 && len(admitted) != 1 {
			t.Fatalf("round %d: %d callers got the trial call, want 1", round, len(admitted))
		}
		if round == 2 && len(admitted) != 16 {
			t.Fatalf("round %d: %d callers were admitted after the member returned, want 16", round, len(admitted))
		}
		for _, c := range admitted {
			tk.Finish(c, true)
		}
	}
	if p := tk.Status().Phase; p != In {
		t.Fatalf("phase %v, want in", p)
	}
}

// TestConcurrentBeginFinish runs callers that Begin, Finish and Abandon
// while the clock moves and others ask Eligible and Status. At most one trial
// call may be out at a time, and the transitions, however interleaved, must
// form one chain from In back to In (closed by a final Reset).
func TestConcurrentBeginFinish(t *testing.T) {
	clk := clock.NewFake(t0)
	tk := New(Config{UnhealthyThreshold: 2, HealthyThreshold: 2, BaseEjection: s, MaxEjection: 4 * s}, clk)
	var (
		mu     sync.Mutex
		all    []Transition
		trials atomic.Int32 // trial calls out
		wg     sync.WaitGroup
		done   atomic.Bool
	)
	record := func(ts []Transition) {
		mu.Lock()
		all = append(all, ts...)
		mu.Unlock()
	}
	for w := range 8 {
		wg.Go(func() {
			for i := range 400 {
				c, ok, ts := tk.Begin()
				record(ts)
				if !ok {
					if c != (Call{}) {
						t.Errorf("refused Begin() returned %+v", c)
					}
					runtime.Gosched()
					continue
				}
				if c.trial && trials.Add(1) > 1 {
					t.Errorf("more than one trial call out")
				}
				runtime.Gosched()
				if c.trial {
					trials.Add(-1)
				}
				switch (w + i) % 5 {
				case 0, 1:
					record(tk.Finish(c, false))
				case 2:
					tk.Abandon(c)
				default:
					record(tk.Finish(c, true))
				}
			}
		})
	}
	wg.Go(func() {
		for !done.Load() {
			tk.Eligible()
			tk.Status()
			runtime.Gosched()
		}
	})
	var clockWG sync.WaitGroup
	clockWG.Go(func() {
		for range 300 {
			clk.Advance(s / 2)
			runtime.Gosched()
		}
	})
	clockWG.Wait()
	done.Store(true)
	wg.Wait()
	record(tk.Reset())

	// Each phase is entered as often as it is left: the chain starts and ends In.
	balance := map[Phase]int{}
	for _, tr := range all {
		balance[tr.To]++
		balance[tr.From]--
	}
	for p, n := range balance {
		if n != 0 {
			t.Errorf("phase %v entered %+d times more than left (%d transitions)", p, n, len(all))
		}
	}
	if len(all) == 0 {
		t.Errorf("no transitions: the test did not exercise ejection")
	}
}
