package router

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/rotation"
)

// Causes of an attempt cancelled by the router rather than by the caller.
// Cancelling the attempt's context is the whole contract with upstream: an
// upstream call whose context ends tells the member with
// notifications/cancelled.
var (
	errAttemptTimeout = errors.New("router: attempt timeout")
	errMemberEjected  = errors.New("router: member left rotation")
	// errNoVerdict marks an attempt the caller's deadline ended sooner than
	// the member's usual latency: the caller's choice, not the member's
	// failure; neither rotation nor the breaker counts it.
	errNoVerdict = errors.New("router: ended by the caller's deadline, no verdict")
)

// attemptPlan is what an attempt knows of the call around it.
type attemptPlan struct {
	more  bool // another candidate may take the call after this attempt
	first bool // the first attempt of the call: it had the caller's whole budget
	safe  bool // the request is safe to repeat on another member
}

// signalEjected wakes the attempts in flight on a member that just left
// the group's rotation.
func (gm *groupMember) signalEjected() {
	ch := make(chan struct{})
	if old := gm.ejected.Swap(&ch); old != nil {
		close(*old)
	}
}

// slowAfter is the time after which an attempt of tool on gm is a counted
// timeout (docs/design.md §3.4): failover.attempt_timeout_s if set, else
// slowFactor × the member's p99 for the tool over the last minute, at least
// minAttemptTimeout; 0 without history.
func (g *Group) slowAfter(gm *groupMember, tool string, now time.Time) time.Duration {
	if d := g.cfg.Failover.AttemptTimeout; d > 0 {
		return d
	}
	p, ok := gm.lat.p99(tool, now)
	if !ok {
		return 0
	}
	return max(minAttemptTimeout, slowFactor*p)
}

// attempt sends the call to one member and records its outcome. An attempt
// running past slowAfter is a counted timeout at that moment; for a tool
// safe to repeat it is then cancelled and the call moves on, if another
// candidate is left and the caller's budget gives the next attempt at least
// as long. An attempt on a member that leaves rotation meanwhile moves on
// at once (tools safe to repeat).
func (g *Group) attempt(ctx context.Context, global *Global, gm *groupMember, admitted rotation.Call, q request, plan attemptPlan) (*Result, outcome.Class, error) {
	start := g.clk.Now()
	slow := g.slowAfter(gm, q.tool, start)
	movable := plan.more && plan.safe
	moveOnSlow := movable && slow > 0 && budgetLeft(ctx) >= 2*slow
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var counted atomic.Bool // the slow verdict was given while the attempt ran
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		g.watch(global, gm, admitted, slow, movable, moveOnSlow, &counted, cancel, done)
	}()
	gm.inFlight.Add(1)
	gm.called()
	res, class, err := q.send(actx, gm.client, plan.safe)
	gm.inFlight.Add(-1)
	close(done)
	<-watched
	elapsed := g.clk.Now().Sub(start)
	res, class, err = g.settleAttempt(ctx, actx, global, gm, admitted, q, plan, &counted, elapsed, res, class, err)
	g.obs.Attempt(g.cfg.ID, gm.ID(), q.tool, class, elapsed)
	return res, class, err
}

// watch runs beside one attempt until done: it gives the slow verdict when
// the attempt passes slow, and cancels the attempt when it may move on.
func (g *Group) watch(global *Global, gm *groupMember, admitted rotation.Call, slow time.Duration, movable, moveOnSlow bool,
	counted *atomic.Bool, cancel context.CancelCauseFunc, done <-chan struct{}) {
	var fire <-chan time.Time
	if slow > 0 {
		t := g.clk.NewTimer(slow)
		defer t.Stop()
		fire = t.C()
	}
	var ejected <-chan struct{}
	if movable {
		ejected = *gm.ejected.Load()
	}
	for {
		select {
		case <-done:
			return
		case <-fire:
			fire = nil
			// Slowness of the last member in rotation is more likely load
			// (it just took the traffic of the others) than a fault: no
			// verdict then, as Envoy's max_ejection_percent keeps a group
			// from ejecting its last member on latency.
			if !g.othersLeft(global, []string{gm.ID()}) {
				continue
			}
			counted.Store(true)
			g.finish(gm, admitted, outcome.Timeout)
			if moveOnSlow {
				cancel(errAttemptTimeout)
				return
			}
		case <-ejected:
			cancel(errMemberEjected)
			return
		}
	}
}

// settleAttempt classifies a finished attempt and gives rotation its
// verdict, unless watch gave it already.
func (g *Group) settleAttempt(ctx, actx context.Context, global *Global, gm *groupMember, admitted rotation.Call, q request, plan attemptPlan,
	counted *atomic.Bool, elapsed time.Duration, res *Result, class outcome.Class, err error) (*Result, outcome.Class, error) {
	now := g.clk.Now()
	switch cause := context.Cause(actx); {
	case class == outcome.OK || class == outcome.ToolError:
		gm.lat.add(q.tool, now, elapsed)
	case errors.Is(cause, errAttemptTimeout):
		return nil, outcome.Timeout, fmt.Errorf("%s: no answer within the %s attempt timeout, cancelled: %w",
			gm.ID(), elapsed.Round(time.Millisecond), context.DeadlineExceeded)
	case errors.Is(cause, errMemberEjected):
		gm.rot.Abandon(admitted) // the member is out already: this attempt adds nothing
		return nil, outcome.Timeout, fmt.Errorf("%s left rotation while the call waited on it: %w", gm.ID(), errMemberEjected)
	case ctx.Err() == context.DeadlineExceeded && !counted.Load() && !g.callerDeadlineCounts(global, gm, q.tool, plan, elapsed, now):
		gm.rot.Abandon(admitted)
		return nil, outcome.Timeout, fmt.Errorf("%s: %w: %w", gm.ID(), errNoVerdict, err)
	}
	if counted.Load() {
		return res, class, err // the slow verdict stands
	}
	if class == outcome.CallerError && ctx.Err() != nil {
		gm.rot.Abandon(admitted) // the caller left: no verdict on the member
	} else {
		g.finish(gm, admitted, class)
	}
	return res, class, err
}

// finish gives rotation the verdict of an attempt that ended in class,
// remembering a failure's class: the evidence an ejection is reported with.
func (g *Group) finish(gm *groupMember, admitted rotation.Call, class outcome.Class) {
	failed := class.Failed(g.cfg.CircuitBreaker.CountToolErrors)
	if failed {
		gm.lastFail.Store(class)
	}
	g.applyRotation(gm, gm.rot.Finish(admitted, !failed))
}

// serverEvidence reports whether a failure of class c came from the member
// itself (it answered with an error), which no network path can cause
// (docs/design.md §4.2); refused connections, timeouts and broken streams
// are path evidence.
func serverEvidence(c outcome.Class) bool {
	return c == outcome.ServerError || c == outcome.ToolError
}

// callerDeadlineCounts decides whether an attempt the caller's deadline
// ended after elapsed is a counted timeout (docs/design.md §3.4): with a
// history, when it already ran longer than the member's usual p99 for the
// tool (ended sooner, it is the caller's choice); without one, when it had
// the caller's whole budget (the first attempt). Never for the last member
// in rotation, whose slowness is more likely the load it just took on.
func (g *Group) callerDeadlineCounts(global *Global, gm *groupMember, tool string, plan attemptPlan, elapsed time.Duration, now time.Time) bool {
	if !g.othersLeft(global, []string{gm.ID()}) {
		return false
	}
	if p, known := gm.lat.p99(tool, now); known {
		return elapsed >= p
	}
	return plan.first
}

// budgetLeft is how long the caller's deadline leaves (deadlines are wall
// clock); a large value without a deadline.
func budgetLeft(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Duration(1<<63 - 1)
	}
	return time.Until(d)
}
