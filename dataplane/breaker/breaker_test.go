package breaker

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hangarmesh/hangar/internal/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// step is one action in a scenario. Calls admitted by "allow" are kept in
// order and finished by "ok"/"fail" with the index of the call.
type step struct {
	op      string // allow, reject, ok, fail, advance, reset, force
	call    int    // for ok/fail: index of the admitted call
	advance time.Duration
	want    []Transition // transitions the step must return
	state   string       // effective state after the step; "" skips the check
}

func tr(from, to State, at time.Duration) Transition {
	return Transition{From: from, To: to, At: t0.Add(at)}
}

func TestBreaker(t *testing.T) {
	cfg := Config{FailureThreshold: 3, ResetTimeout: 30 * time.Second, ProbeCount: 1}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "consecutive failures open it",
			cfg:  cfg,
			steps: []step{
				{op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "fail", call: 0}, {op: "fail", call: 1},
				{op: "fail", call: 2, want: []Transition{tr(Closed, Open, 0)}, state: "open"},
				{op: "reject", state: "open"},
			},
		},
		{
			name: "a success resets the count",
			cfg:  cfg,
			steps: []step{
				{op: "allow"}, {op: "fail", call: 0},
				{op: "allow"}, {op: "fail", call: 1},
				{op: "allow"}, {op: "ok", call: 2},
				{op: "allow"}, {op: "fail", call: 3},
				{op: "allow"}, {op: "fail", call: 4, state: "closed"},
				{op: "allow"}, {op: "fail", call: 5, want: []Transition{tr(Closed, Open, 0)}, state: "open"},
			},
		},
		{
			name: "open rejects until the reset timeout then half-opens on admission",
			cfg:  cfg,
			steps: []step{
				{op: "force", want: []Transition{tr(Closed, Open, 0)}, state: "open"},
				{op: "advance", advance: 30*time.Second - 1, state: "open"},
				{op: "reject", state: "open"},
				{op: "advance", advance: 11, state: "half_open"}, // effective, nothing reported yet
				{op: "allow", want: []Transition{tr(Open, HalfOpen, 30*time.Second)}, state: "half_open"},
				{op: "reject", state: "half_open"}, // one probe in flight
				{op: "ok", call: 0, want: []Transition{tr(HalfOpen, Closed, 30*time.Second+10)}, state: "closed"},
				{op: "allow", state: "closed"},
			},
		},
		{
			name: "a failed probe reopens for a full reset timeout",
			cfg:  cfg,
			steps: []step{
				{op: "force", want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 40 * time.Second},
				{op: "allow", want: []Transition{tr(Open, HalfOpen, 30*time.Second)}},
				{op: "fail", call: 0, want: []Transition{tr(HalfOpen, Open, 40*time.Second)}, state: "open"},
				{op: "advance", advance: 29 * time.Second},
				{op: "reject", state: "open"},
				{op: "advance", advance: time.Second},
				{op: "allow", want: []Transition{tr(Open, HalfOpen, 70*time.Second)}, state: "half_open"},
			},
		},
		{
			name: "probe count admits that many at once and needs that many successes",
			cfg:  Config{FailureThreshold: 1, ResetTimeout: time.Second, ProbeCount: 2},
			steps: []step{
				{op: "allow"},
				{op: "fail", call: 0, want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: time.Second},
				{op: "allow", want: []Transition{tr(Open, HalfOpen, time.Second)}},
				{op: "allow"},
				{op: "reject", state: "half_open"},
				{op: "ok", call: 1, state: "half_open"},
				{op: "allow", state: "half_open"}, // a slot is free again
				{op: "ok", call: 2, want: []Transition{tr(HalfOpen, Closed, time.Second)}, state: "closed"},
				{op: "ok", call: 3, state: "closed"}, // stale: admitted in the half-open period
			},
		},
		{
			name: "late results of calls admitted while closed are ignored",
			cfg:  cfg,
			steps: []step{
				{op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "fail", call: 0}, {op: "fail", call: 1},
				{op: "fail", call: 2, want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 30 * time.Second},
				{op: "allow", want: []Transition{tr(Open, HalfOpen, 30*time.Second)}},
				{op: "fail", call: 3, state: "half_open"}, // would reopen if it counted
				{op: "ok", call: 4, state: "half_open"},   // would close if it counted
				{op: "reject", state: "half_open"},        // the probe (call 5) is still in flight
			},
		},
		{
			name: "done is idempotent",
			cfg:  Config{FailureThreshold: 2, ResetTimeout: time.Second},
			steps: []step{
				{op: "allow"},
				{op: "fail", call: 0},
				{op: "fail", call: 0, state: "closed"},
				{op: "allow"},
				{op: "fail", call: 1, want: []Transition{tr(Closed, Open, 0)}},
			},
		},
		{
			name: "reset closes from open and ignores earlier calls",
			cfg:  cfg,
			steps: []step{
				{op: "allow"},
				{op: "force", want: []Transition{tr(Closed, Open, 0)}},
				{op: "reset", want: []Transition{tr(Open, Closed, 0)}, state: "closed"},
				{op: "reset", state: "closed"},
				{op: "fail", call: 0, state: "closed"},
			},
		},
		{
			name: "reset after the timeout reports the lazy half-open first",
			cfg:  cfg,
			steps: []step{
				{op: "force", want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: time.Minute},
				{op: "reset", want: []Transition{tr(Open, HalfOpen, 30*time.Second), tr(HalfOpen, Closed, time.Minute)}},
			},
		},
		{
			name: "force open while open restarts the timeout",
			cfg:  cfg,
			steps: []step{
				{op: "force", want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 20 * time.Second},
				{op: "force", state: "open"},
				{op: "advance", advance: 20 * time.Second},
				{op: "reject", state: "open"},
				{op: "advance", advance: 10 * time.Second},
				{op: "allow", want: []Transition{tr(Open, HalfOpen, 50*time.Second)}},
				{op: "force", want: []Transition{tr(HalfOpen, Open, 50*time.Second)}, state: "open"},
				{op: "ok", call: 0, state: "open"}, // the probe was admitted before the force
			},
		},
		{
			name: "a passing probe half-opens an open breaker at once",
			cfg:  cfg,
			steps: []step{
				{op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "fail", call: 0}, {op: "fail", call: 1},
				{op: "fail", call: 2, want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 2 * time.Second},
				{op: "probe", advance: 3 * time.Second, state: "open"}, // started before it opened
				{op: "probe", want: []Transition{tr(Open, HalfOpen, 2*time.Second)}, state: "half_open"},
				{op: "probe", state: "half_open"},
				{op: "allow"}, {op: "reject"},
				{op: "ok", call: 3, want: []Transition{tr(HalfOpen, Closed, 2*time.Second)}, state: "closed"},
				{op: "probe", state: "closed"},
			},
		},
		{
			name: "settle reports half-open when the reset timeout ends",
			cfg:  cfg,
			steps: []step{
				{op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "fail", call: 0}, {op: "fail", call: 1},
				{op: "fail", call: 2, want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 29 * time.Second},
				{op: "settle", state: "open"},
				{op: "advance", advance: 5 * time.Second},
				{op: "settle", want: []Transition{tr(Open, HalfOpen, 30*time.Second)}, state: "half_open"},
				{op: "settle"},
			},
		},
		{
			name: "zero config takes the defaults",
			steps: []step{
				{op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"}, {op: "allow"},
				{op: "fail", call: 0}, {op: "fail", call: 1}, {op: "fail", call: 2},
				{op: "fail", call: 3}, {op: "fail", call: 4}, {op: "fail", call: 5},
				{op: "fail", call: 6}, {op: "fail", call: 7}, {op: "fail", call: 8, state: "closed"},
				{op: "fail", call: 9, want: []Transition{tr(Closed, Open, 0)}},
				{op: "advance", advance: 60*time.Second - 1, state: "open"},
				{op: "advance", advance: 1, state: "half_open"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			b := New(tt.cfg, clk)
			var calls []func(bool) []Transition
			for i, s := range tt.steps {
				var got []Transition
				switch s.op {
				case "allow", "reject":
					c, ts, err := b.Admit()
					got = ts
					if s.op == "reject" {
						if !errors.Is(err, ErrOpen) || c != nil {
							t.Fatalf("step %d: Admit() = call %v, err %v; want nil, ErrOpen", i, c != nil, err)
						}
						break
					}
					if err != nil {
						t.Fatalf("step %d: Admit() error %v", i, err)
					}
					done := c.Done
					calls = append(calls, done)
				case "ok", "fail":
					got = calls[s.call](s.op == "ok")
				case "advance":
					clk.Advance(s.advance)
				case "reset":
					got = b.Reset()
				case "force":
					got = b.ForceOpen()
				case "probe":
					got = b.ProbePassed(clk.Now().Add(-s.advance))
				case "settle":
					got = b.Settle()
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Fatalf("step %d (%s): transitions (-want +got):\n%s", i, s.op, diff)
				}
				if st := b.Status().State; s.state != "" && st.String() != s.state {
					t.Fatalf("step %d (%s): state %v, want %v", i, s.op, st, s.state)
				}
			}
		})
	}
}

func TestStatus(t *testing.T) {
	cfg := Config{FailureThreshold: 2, ResetTimeout: 30 * time.Second, ProbeCount: 1}
	tests := []struct {
		name  string
		setup func(b *Breaker, clk *clock.Fake)
		want  Status
	}{
		{
			name:  "new",
			setup: func(*Breaker, *clock.Fake) {},
			want:  Status{State: Closed, Config: cfg},
		},
		{
			name: "closed with a failure",
			setup: func(b *Breaker, _ *clock.Fake) {
				c, _, _ := b.Admit()
				c.Done(false)
			},
			want: Status{State: Closed, ConsecutiveFailures: 1, Config: cfg},
		},
		{
			name: "open",
			setup: func(b *Breaker, clk *clock.Fake) {
				for range 2 {
					c, _, _ := b.Admit()
					c.Done(false)
				}
				clk.Advance(10 * time.Second)
			},
			want: Status{State: Open, ConsecutiveFailures: 2, OpenedAt: t0,
				HalfOpensAt: t0.Add(30 * time.Second), Config: cfg},
		},
		{
			name: "effectively half-open",
			setup: func(b *Breaker, clk *clock.Fake) {
				b.ForceOpen()
				clk.Advance(30 * time.Second)
			},
			want: Status{State: HalfOpen, OpenedAt: t0, Config: cfg},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			b := New(cfg, clk)
			tt.setup(b, clk)
			if diff := cmp.Diff(tt.want, b.Status()); diff != "" {
				t.Errorf("Status() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZeroConfigStatus(t *testing.T) {
	want := Config{FailureThreshold: 10, ResetTimeout: 60 * time.Second, ProbeCount: 1}
	if diff := cmp.Diff(want, New(Config{}, nil).Status().Config); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half_open", State(7): "State(7)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestConcurrentProbes races many callers against a half-open breaker: it
// must admit exactly ProbeCount of them, and a double done must not free a
// second slot.
func TestConcurrentProbes(t *testing.T) {
	const probes = 3
	clk := clock.NewFake(t0)
	b := New(Config{ResetTimeout: time.Second, ProbeCount: probes}, clk)
	b.ForceOpen()
	clk.Advance(time.Second)

	var (
		mu    sync.Mutex
		dones []func(bool) []Transition
		wg    sync.WaitGroup
	)
	for range 32 {
		wg.Go(func() {
			if c, _, err := b.Admit(); err == nil {
				mu.Lock()
				dones = append(dones, c.Done)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(dones) != probes {
		t.Fatalf("admitted %d calls, want %d", len(dones), probes)
	}
	for range 2 { // the second round is a no-op
		wg.Go(func() { dones[0](true) })
	}
	wg.Wait()
	admitted := 0
	for range 32 {
		if _, _, err := b.Admit(); err == nil {
			admitted++
		}
	}
	if admitted != 1 {
		t.Errorf("after one probe finished, admitted %d more, want 1", admitted)
	}
}

func BenchmarkAdmitOpen(b *testing.B) {
	br := New(Config{}, clock.NewFake(t0))
	br.ForceOpen()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := br.Admit(); err != ErrOpen {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdmitClosed(b *testing.B) {
	br := New(Config{}, clock.Real{})
	b.ReportAllocs()
	for b.Loop() {
		c, _, err := br.Admit()
		if err != nil {
			b.Fatal(err)
		}
		c.Done(true)
	}
}

// A half-open probe call whose caller gave up decides nothing: the slot is
// free for the next probe call.
func TestAbandonHalfOpenProbe(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	b := New(Config{FailureThreshold: 1, ResetTimeout: time.Second, ProbeCount: 1}, clk)
	first, _, _ := b.Admit()
	first.Done(false) // open
	clk.Advance(2 * time.Second)
	c, _, err := b.Admit()
	if err != nil {
		t.Fatalf("half-open admits one probe: %v", err)
	}
	c.Abandon()
	if st := b.Status().State; st != HalfOpen {
		t.Fatalf("an abandoned probe changed the state to %s", st)
	}
	c2, _, err := b.Admit()
	if err != nil {
		t.Fatalf("the abandoned probe's slot was not freed: %v", err)
	}
	c.Abandon() // twice: no effect
	if _, _, err := b.Admit(); err == nil {
		t.Fatal("a second abandon freed a slot it did not hold")
	}
	c2.Done(true)
	if st := b.Status().State; st != Closed {
		t.Fatalf("state %s after a passing probe, want closed", st)
	}
}
