package router

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// warm gives member a latency history for tool (n answers of d).
func warm(r *Router, member, tool string, d time.Duration, clk *clock.Fake) {
	m, _ := r.Member(member)
	for range 10 {
		m.lat.add(tool, clk.Now(), d)
	}
}

type callDone struct {
	res *Result
	err error
}

func callAsync(r *Router, ctx context.Context, tool, args string) <-chan callDone {
	ch := make(chan callDone, 1)
	go func() {
		res, err := r.Call(ctx, "grp", tool, json.RawMessage(args), CallOptions{})
		ch <- callDone{res, err}
	}()
	return ch
}

// A frozen primary costs no failed call of a tool safe to repeat: past the
// adaptive attempt timeout (4 × p99, at least 250 ms) the attempt is
// cancelled upstream and the backup answers.
func TestAttemptTimeoutMovesOn(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, nil, primary, backup))
	warm(r, "primary", "whoami", 10*time.Millisecond, clk)
	primary.fail(t, mathserver.Faults{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := callAsync(r, ctx, "whoami", `{}`)
	clk.WaitForTimers(3) // two probe loops and the attempt's timer
	clk.Advance(249 * time.Millisecond)
	select {
	case d := <-done:
		t.Fatalf("the call ended before the attempt timeout: %+v, %v", d.res, d.err)
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(time.Millisecond)
	d := <-done
	if d.err != nil || d.res.Member != "backup" || d.res.Attempts != 2 {
		t.Fatalf("got %+v, %v; want the backup on the second attempt", d.res, d.err)
	}
	if st := groupState(r); st.Members[0].ConsecutiveFailures != 1 || st.Breaker != "closed" {
		t.Fatalf("primary failures %d, breaker %s; want one counted timeout, closed", st.Members[0].ConsecutiveFailures, st.Breaker)
	}
	eventuallyTrue(t, "the primary saw the attempt cancelled", func() bool { return primary.srv.Stats().CancelledCalls == 1 })
}

// A tool not safe to repeat waits on the frozen primary, but the slow
// attempts count as timeouts when they pass 4 × p99: unhealthy_threshold of
// them eject the primary and the next calls go to the backup, with the
// breaker closed.
func TestSlowAttemptsEjectForNonRepeatableTools(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
		g.CircuitBreaker.FailureThreshold = 1
	}, primary, backup))
	warm(r, "primary", "append", 10*time.Millisecond, clk)
	primary.fail(t, mathserver.Faults{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	first := callAsync(r, ctx, "append", `{"text":"a"}`)
	second := callAsync(r, ctx, "append", `{"text":"b"}`)
	clk.WaitForTimers(4)
	clk.Advance(250 * time.Millisecond)
	eventuallyTrue(t, "the primary out of rotation", func() bool { return groupState(r).Members[0].Rotation == "out" })
	res, err := r.Call(context.Background(), "grp", "append", json.RawMessage(`{"text":"c"}`), CallOptions{})
	if err != nil || res.Member != "backup" {
		t.Fatalf("after the ejection: %+v, %v; want the backup", res, err)
	}
	cancel() // the callers give up on the two hung calls
	for _, ch := range []<-chan callDone{first, second} {
		if d := <-ch; d.err == nil {
			t.Fatalf("a hung call of a non-repeatable tool succeeded: %+v", d.res)
		}
	}
	if st := groupState(r); st.Breaker != "closed" {
		t.Fatalf("breaker %s with the backup serving; want closed", st.Breaker)
	}
}

// A caller's deadline shorter than the member's usual latency is the
// caller's choice: no verdict on the member or the group. Without history
// an attempt that had the caller's whole budget counts.
func TestCallerDeadlineIsNotEvidence(t *testing.T) {
	for _, tt := range []struct {
		name     string
		history  bool
		failures int
	}{
		{name: "slower tool than the deadline", history: true, failures: 0},
		{name: "no history", history: false, failures: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
			r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
				g.CircuitBreaker.FailureThreshold = 1
			}, primary, backup))
			if tt.history {
				warm(r, "primary", "whoami", 3*time.Second, clk)
			}
			primary.fail(t, mathserver.Faults{Hang: true})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := r.Call(ctx, "grp", "whoami", json.RawMessage(`{}`), CallOptions{})
			if TypeOf(err) != ErrTimeout {
				t.Fatalf("got %v; want %s", err, ErrTimeout)
			}
			st := groupState(r)
			if st.Members[0].ConsecutiveFailures != tt.failures || st.Breaker != "closed" {
				t.Fatalf("primary failures %d, breaker %s; want %d, closed", st.Members[0].ConsecutiveFailures, st.Breaker, tt.failures)
			}
		})
	}
}

func TestP99(t *testing.T) {
	var l latencies
	now := time.Unix(1000, 0)
	if _, ok := l.p99("t", now); ok {
		t.Fatal("p99 without samples")
	}
	for range 100 {
		l.add("t", now.Add(-2*time.Minute), time.Hour) // too old to count
	}
	for i := range 100 {
		l.add("t", now, time.Duration(i+1)*time.Millisecond)
	}
	if p, ok := l.p99("t", now); !ok || p != 99*time.Millisecond {
		t.Fatalf("p99 = %s, %v; want 99ms over the last minute", p, ok)
	}
}

// eventuallyTrue polls cond (state changed by goroutines the test does not
// own) for up to 10 s of real time.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
