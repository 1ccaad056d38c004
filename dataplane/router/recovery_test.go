package router

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// breakerLog records the breaker states a router reports, as they happen.
type breakerLog struct {
	nopObserver
	mu     sync.Mutex
	states []breaker.State
}

func (b *breakerLog) Breaker(_ string, s breaker.State) {
	b.mu.Lock()
	b.states = append(b.states, s)
	b.mu.Unlock()
}

func (b *breakerLog) last() breaker.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.states[len(b.states)-1]
}

// startObserved is startRouter with an observer.
func startObserved(t *testing.T, f *fleetfile.Fleet, obs Observer) (*Router, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	r, err := New(f, Options{Clock: clk, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	clk.WaitForTimers(len(f.Servers))
	return r, clk
}

// advanceUntil moves the fake clock in steps of step, letting the probe
// loops run after each (they wait on timers again), until cond holds. It
// returns the fake time that took, or fails after limit.
func advanceUntil(t *testing.T, clk *clock.Fake, timers int, step, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	var passed time.Duration
	for !cond() {
		if passed >= limit {
			t.Fatalf("condition not met after %s of fake time", limit)
		}
		clk.Advance(step)
		passed += step
		// Let the loops whose timers fired run (a probe) and wait again.
		deadline := time.Now().Add(10 * time.Second)
		for clk.Timers() < timers && !cond() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return passed
}

func groupState(r *Router) GroupStatus {
	st, _ := r.GroupStatus("grp")
	return st
}

// The breaker means "the group cannot serve": a member failing beside a
// healthy one never opens it, for tools safe to repeat or not; every member
// failing still does.
func TestBreakerCountsOnlyWhenNoMemberIsLeft(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
		g.CircuitBreaker.FailureThreshold = 2
	}, primary, backup))
	primary.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	ctx := context.Background()
	failed := 0
	for range 10 {
		// append is not safe to repeat: a failure on the primary fails the call.
		if _, err := r.Call(ctx, "grp", "append", json.RawMessage(`{"text":"x"}`), CallOptions{}); err != nil {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d calls of a non-repeatable tool failed, want unhealthy_threshold (2)", failed)
	}
	if st := groupState(r); st.Breaker != "closed" {
		t.Fatalf("breaker %s with a healthy backup in rotation; want closed", st.Breaker)
	}

	backup.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	for range 2 {
		if _, err := call(t, r, "add"); err == nil {
			t.Fatal("a call succeeded with every member failing")
		}
	}
	if _, err := call(t, r, "add"); TypeOf(err) != ErrCircuitOpen {
		t.Fatalf("every member failing: %v; want %s after failure_threshold failed calls", err, ErrCircuitOpen)
	}
}

// While OPEN, members are probed on a short backoff and the first passing
// probe half-opens the breaker at once (reported then, not at the next
// call); a real trial call closes it.
func TestPassingProbeHalfOpensBreaker(t *testing.T) {
	only := newUpstream(t, "only")
	obs := &breakerLog{}
	r, clk := startObserved(t, fleet(fleetfile.StrategyRoundRobin, func(g *fleetfile.Group) {
		g.CircuitBreaker = fleetfile.CircuitBreaker{FailureThreshold: 2, ResetTimeout: time.Minute, ProbeCount: 1}
	}, only), obs)
	only.fail(t, mathserver.Faults{FailTools: []string{"*"}, FailList: true})
	for range 2 {
		_, _ = call(t, r, "add")
	}
	if _, err := call(t, r, "add"); TypeOf(err) != ErrCircuitOpen {
		t.Fatalf("after 2 failures: %v; want %s", err, ErrCircuitOpen)
	}
	// Probes fail while the member is down: the breaker stays open.
	advanceUntil(t, clk, 2, 500*time.Millisecond, 4*time.Second, func() bool { return clkPassed(clk, 4*time.Second) })
	if st := groupState(r); st.Breaker != "open" {
		t.Fatalf("breaker %s while probes fail; want open", st.Breaker)
	}
	only.fail(t, mathserver.Faults{}) // back
	took := advanceUntil(t, clk, 2, 250*time.Millisecond, 20*time.Second, func() bool { return obs.last() == breaker.HalfOpen })
	if took > 9*time.Second {
		t.Errorf("half-open %s after the member came back; want within the probe backoff (8 s), far before reset_timeout_s (60 s)", took)
	}
	if _, err := call(t, r, "add"); err != nil {
		t.Fatalf("trial call: %v", err)
	}
	if obs.last() != breaker.Closed {
		t.Fatalf("breaker reported %v after a passing trial call; want closed", obs.last())
	}
}

var clkStart = time.Unix(1_700_000_000, 0)

// clkPassed reports whether the fake clock has moved d past its start.
func clkPassed(clk *clock.Fake, d time.Duration) bool { return clk.Now().Sub(clkStart) >= d }

// With no passing probe, HALF_OPEN is reported when reset_timeout_s ends,
// without waiting for a call.
func TestHalfOpenReportedWhenResetTimeoutEnds(t *testing.T) {
	only := newUpstream(t, "only")
	obs := &breakerLog{}
	r, clk := startObserved(t, fleet(fleetfile.StrategyRoundRobin, func(g *fleetfile.Group) {
		g.CircuitBreaker = fleetfile.CircuitBreaker{FailureThreshold: 1, ResetTimeout: 3 * time.Second, ProbeCount: 1}
	}, only), obs)
	only.fail(t, mathserver.Faults{FailTools: []string{"*"}, FailList: true})
	_, _ = call(t, r, "add")
	if obs.last() != breaker.Open {
		t.Fatalf("breaker %v after a failed call with failure_threshold 1; want open", obs.last())
	}
	took := advanceUntil(t, clk, 2, 500*time.Millisecond, 10*time.Second, func() bool { return obs.last() == breaker.HalfOpen })
	if took < 3*time.Second {
		t.Errorf("half-open after %s with failing probes; want at reset_timeout_s (3 s)", took)
	}
}

// A member out of local rotation on path evidence (here: timeouts) returns
// when a probe passes and its trial call succeeds, not after the ejection
// time.
func TestProbeBringsEjectedMemberBack(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
		g.Health.BaseEjection = time.Minute
	}, primary, backup))
	warm(r, "primary", "whoami", 10*time.Millisecond, clk)
	primary.fail(t, mathserver.Faults{Hang: true, FailList: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := []<-chan callDone{callAsync(r, ctx, "whoami", `{}`), callAsync(r, ctx, "whoami", `{}`)}
	clk.WaitForTimers(4) // two probe loops, two attempt timers
	clk.Advance(250 * time.Millisecond)
	for _, ch := range calls {
		if d := <-ch; d.err != nil || d.res.Member != "backup" {
			t.Fatalf("a call on the hung primary: %+v, %v; want the backup after the attempt timeout", d.res, d.err)
		}
	}
	if st := groupState(r); st.Members[0].Rotation != "out" {
		t.Fatalf("primary %q after 2 timeouts; want out", st.Members[0].Rotation)
	}
	advanceUntil(t, clk, 2, 500*time.Millisecond, 3*time.Second, func() bool { return clkPassed(clk, 3*time.Second) })
	if st := groupState(r); st.Members[0].Rotation != "out" {
		t.Fatalf("primary %q while its probes fail; want out", st.Members[0].Rotation)
	}
	primary.fail(t, mathserver.Faults{})
	took := advanceUntil(t, clk, 2, 250*time.Millisecond, 30*time.Second, func() bool {
		return groupState(r).Members[0].Rotation == "probation"
	})
	if took > 9*time.Second {
		t.Errorf("probation %s after the primary came back; want within the probe backoff, not the 60 s ejection", took)
	}
	res, err := call(t, r, "whoami")
	if err != nil || text(res) != "primary" {
		t.Fatalf("trial call: %q, %v; want the primary", text(res), err)
	}
	if st := groupState(r); st.Members[0].Rotation != "in" {
		t.Fatalf("primary %q after a passing trial; want in", st.Members[0].Rotation)
	}
}

// A member ejected on server evidence (its tools fail while tools/list
// passes) is not cleared by a passing probe: its ejection time runs out.
func TestServerEvidenceOutlastsProbes(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
		g.Health.BaseEjection = 10 * time.Second
	}, primary, backup))
	primary.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	for range 2 {
		if _, err := call(t, r, "add"); err != nil {
			t.Fatal(err)
		}
	}
	advanceUntil(t, clk, 2, 500*time.Millisecond, 8*time.Second, func() bool { return clkPassed(clk, 8*time.Second) })
	if st := groupState(r); st.Members[0].Rotation != "out" {
		t.Fatalf("primary %q with passing probes and failing tools; want out until its ejection time", st.Members[0].Rotation)
	}
}

// Readiness: ready while a group can serve, not ready (with the reason)
// when its breaker is open.
func TestReadiness(t *testing.T) {
	only := newUpstream(t, "only")
	r, _ := startRouter(t, fleet(fleetfile.StrategyRoundRobin, func(g *fleetfile.Group) {
		g.CircuitBreaker = fleetfile.CircuitBreaker{FailureThreshold: 1, ResetTimeout: time.Minute, ProbeCount: 1}
	}, only))
	if ok, un := r.Readiness(); !ok || len(un) != 0 {
		t.Fatalf("healthy group: ready %v, unavailable %+v; want ready", ok, un)
	}
	only.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	_, _ = call(t, r, "add")
	ok, un := r.Readiness()
	if ok || len(un) != 1 || un[0].Group != "grp" {
		t.Fatalf("breaker open: ready %v, unavailable %+v; want not ready naming grp", ok, un)
	}
	t.Logf("reason: %s", un[0].Reason)
}
