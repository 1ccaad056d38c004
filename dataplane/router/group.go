package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/rotation"
	"github.com/hangarmesh/hangar/dataplane/strategy"
	"github.com/hangarmesh/hangar/dataplane/upstream"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// Group routes calls over its members with a strategy, a breaker, local
// rotation and failover inside a call.
type Group struct {
	cfg      *fleetfile.Group
	members  []*groupMember // config order
	strategy strategy.Strategy
	breaker  *breaker.Breaker
	budget   *budget
	clk      clock.Clock
	log      *slog.Logger
	obs      Observer

	mu     sync.Mutex
	active string // the member that served the last successful call

	lastCall atomic.Int64  // unix ns of the last call
	forced   atomic.Uint64 // snapshot version that last forced the breaker open
	// opened wakes run when the breaker opens, to report HALF_OPEN when
	// the reset timeout ends.
	opened chan struct{}
}

// groupMember is a member as seen by one group: its passive rotation is
// per group, since groups may set different thresholds.
type groupMember struct {
	*Member
	spec fleetfile.Member
	rot  *rotation.Tracker
	// ejected is closed when the member leaves this group's rotation, so
	// attempts in flight on it can move on; then replaced by a fresh one.
	ejected atomic.Pointer[chan struct{}]
	// lastFail is the class of the latest counted failure (outcome.Class);
	// serverEjected says the latest ejection was on server evidence.
	lastFail      atomic.Value
	serverEjected atomic.Bool
}

func newGroup(cfg *fleetfile.Group, members map[string]*Member, clk clock.Clock, log *slog.Logger, obs Observer) (*Group, error) {
	st, err := strategy.New(string(cfg.Strategy), nil)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", cfg.ID, err)
	}
	g := &Group{
		cfg:      cfg,
		strategy: st,
		breaker: breaker.New(breaker.Config{
			FailureThreshold: cfg.CircuitBreaker.FailureThreshold,
			ResetTimeout:     cfg.CircuitBreaker.ResetTimeout,
			ProbeCount:       cfg.CircuitBreaker.ProbeCount,
		}, clk),
		budget: newBudget(),
		clk:    clk,
		log:    log,
		obs:    obs,
		opened: make(chan struct{}, 1),
	}
	for _, spec := range cfg.Members {
		m, ok := members[spec.ID]
		if !ok {
			return nil, fmt.Errorf("group %s: member %q is not a server of the fleet", cfg.ID, spec.ID)
		}
		gm := &groupMember{
			Member: m,
			spec:   spec,
			rot: rotation.New(rotation.Config{
				UnhealthyThreshold: cfg.Health.UnhealthyThreshold,
				HealthyThreshold:   cfg.Health.HealthyThreshold,
				BaseEjection:       cfg.Health.BaseEjection,
				MaxEjection:        cfg.Health.MaxEjection,
			}, clk),
		}
		ch := make(chan struct{})
		gm.ejected.Store(&ch)
		g.members = append(g.members, gm)
		if !slices.Contains(m.groups, g) {
			m.groups = append(m.groups, g)
		}
	}
	return g, nil
}

// run reports the breaker's move to HALF_OPEN when its reset timeout ends
// (not at the next call), until ctx ends.
func (g *Group) run(ctx context.Context) {
	for {
		var fire <-chan time.Time
		stop := func() bool { return false }
		if st := g.breaker.Status(); st.State == breaker.Open {
			t := g.clk.NewTimer(st.HalfOpensAt.Sub(g.clk.Now()))
			fire, stop = t.C(), t.Stop
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-g.opened:
			stop()
		case <-fire:
			g.applyBreaker(g.breaker.Settle())
		}
	}
}

// probePassed takes a passing active probe of member, started at started,
// as evidence: the member leaves Out for probation, and an open breaker
// goes half-open, so real trial calls decide at once.
func (g *Group) probePassed(member string, started time.Time) {
	// A member ejected on server evidence (its tools answered with errors)
	// is not cleared by a passing tools/list: its ejection time runs out.
	if gm := g.member(member); gm != nil && !gm.serverEjected.Load() {
		g.applyRotation(gm, gm.rot.ProbePassed(started))
	}
	g.applyBreaker(g.breaker.ProbePassed(started))
}

// ID returns the group id.
func (g *Group) ID() string { return g.cfg.ID }

// eligible returns the members a call may try, unordered (docs/design.md §3.4):
// members in global rotation and in local rotation (healthy by probes and
// not ejected by real traffic); if none, the global rotation alone, since
// the local view may be stale (fallback); nil if nothing is left.
func (g *Group) eligible(global *Global) (pick []strategy.Candidate, fallback bool) {
	var local, all []strategy.Candidate
	for _, gm := range g.members {
		if !global.inRotation(g.cfg.ID, gm.ID()) {
			continue
		}
		if global == nil && !gm.State().Serving() {
			continue // standalone: probes are the global view
		}
		c := strategy.Candidate{ID: gm.ID(), Priority: gm.spec.Priority, Weight: gm.spec.Weight, InFlight: int(gm.inFlight.Load())}
		all = append(all, c)
		if gm.healthy() && gm.rot.Eligible() {
			local = append(local, c)
		}
	}
	if len(local) > 0 {
		return local, false
	}
	return all, len(all) > 0
}

// candidates returns the eligible members in the order the strategy wants
// them tried for one call.
func (g *Group) candidates(global *Global) (members []*groupMember, fallback bool) {
	pick, fallback := g.eligible(global)
	if len(pick) == 0 {
		return nil, false
	}
	ordered := g.strategy.Order(pick)
	members = make([]*groupMember, 0, len(ordered))
	for _, c := range ordered {
		members = append(members, g.member(c.ID))
	}
	return members, fallback
}

// memberList returns the group's members in config order.
func (g *Group) memberList() []*Member {
	out := make([]*Member, len(g.members))
	for i, gm := range g.members {
		out[i] = gm.Member
	}
	return out
}

func (g *Group) member(id string) *groupMember {
	for _, gm := range g.members {
		if gm.ID() == id {
			return gm
		}
	}
	return nil
}

// CallOptions tune one call.
type CallOptions struct {
	// MaxAttempts caps the members tried (0: the group's failover.max_attempts).
	MaxAttempts int
	// SafeToRepeat marks a request that may be sent again to another member
	// after a timeout, transport or server error whatever the tool's
	// annotations (a read: a list, resources/read, prompts/get).
	SafeToRepeat bool
	// Session names the client session the call came from, for observers
	// (the access log); "" outside one.
	Session string
}

// Sender makes one attempt of a front-door request on a member, on the
// front door's own session there (docs/design.md §3.2), and classifies it.
// repeatable says whether the member may run it twice (CallOptions.SafeToRepeat,
// or a tool annotated read-only or idempotent, or in failover.retry_on).
type Sender func(ctx context.Context, member *upstream.Client, repeatable bool) (*upstream.Reply, outcome.Class, error)

// Result is a finished call: Result for Call, Reply for Relay.
type Result struct {
	Result   *mcp.CallToolResult
	Reply    *upstream.Reply
	Member   string // the member that answered
	Attempts int
}

// request is what a call sends to each member it tries: arguments through
// the SDK client (Call), or a front-door request through its Sender (Relay).
type request struct {
	tool  string
	args  json.RawMessage
	relay Sender
}

// send makes one attempt on a member and classifies it.
func (q request) send(ctx context.Context, c *upstream.Client, repeatable bool) (*Result, outcome.Class, error) {
	if q.relay != nil {
		reply, class, err := q.relay(ctx, c, repeatable)
		return &Result{Reply: reply}, class, err
	}
	res, err := c.CallTool(ctx, q.tool, q.args)
	return &Result{Result: res}, outcome.Classify(res, err), err
}

// call runs one tool call on the group.
func (g *Group) call(ctx context.Context, global *Global, q request, opts CallOptions) (*Result, outcome.Class, error) {
	if global != nil && global.BreakerOpen[g.cfg.ID] && g.forced.Swap(global.Version) != global.Version {
		// Open once per snapshot that says so: the local breaker then runs
		// its own reset timeout and half-open probes, whose results bring
		// the fleet-wide verdict back.
		g.applyBreaker(g.breaker.ForceOpen())
	}
	g.lastCall.Store(g.clk.Now().UnixNano())
	if err := checkRequest(g.cfg.ID, q, g.memberList()...); err != nil {
		return nil, outcome.CallerError, err // before the breaker: counts against nothing
	}
	admitted, trs, err := g.breaker.Admit()
	g.applyBreaker(trs)
	if err != nil {
		st := g.breaker.Status()
		return nil, outcome.ServerError, &CallError{Type: ErrCircuitOpen, Target: g.cfg.ID,
			Msg: fmt.Sprintf("circuit breaker is open after %d consecutive failed calls; retry after %s",
				st.ConsecutiveFailures, st.HalfOpensAt.Format("15:04:05"))}
	}
	res, class, tried, err := g.attempts(ctx, global, q, opts)
	failed := class.Failed(g.cfg.CircuitBreaker.CountToolErrors)
	switch {
	case ctx.Err() != nil && (class == outcome.CallerError || TypeOf(err) == ErrNoAvailableMember || errors.Is(err, errNoVerdict)):
		admitted.Abandon() // the caller left or chose a short deadline: no verdict on the group
	case failed && g.othersLeft(global, tried):
		// A member the call did not try can still serve: rotation handles
		// this failure; the group as a whole has not failed.
		admitted.Abandon()
	default:
		g.applyBreaker(admitted.Done(!failed))
	}
	return res, class, err
}

// othersLeft reports whether a member not in tried is in global and local
// rotation and healthy now: the breaker counts a failed call only when
// none is (docs/design.md §3.4, "the group cannot serve").
func (g *Group) othersLeft(global *Global, tried []string) bool {
	for _, gm := range g.members {
		if slices.Contains(tried, gm.ID()) || !global.inRotation(g.cfg.ID, gm.ID()) {
			continue
		}
		if global == nil && !gm.State().Serving() {
			continue
		}
		if gm.healthy() && gm.rot.Eligible() {
			return true
		}
	}
	return false
}

// attempts tries the candidates in order until one answers or the call may
// not move on. tried lists the members it sent the call to.
func (g *Group) attempts(ctx context.Context, global *Global, q request, opts CallOptions) (*Result, outcome.Class, []string, error) {
	g.budget.call()
	cands, fallback := g.candidates(global)
	if len(cands) == 0 {
		return nil, outcome.ConnectError, nil, &CallError{Type: ErrNoAvailableMember, Target: g.cfg.ID,
			Msg: "no member is available: every member is degraded, ejected or drained"}
	}
	maxAttempts := opts.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = g.cfg.Failover.MaxAttempts
	}
	var (
		lastErr   error
		lastClass outcome.Class
		lastRes   *Result
		tried     []string
	)
	for i, gm := range cands {
		if len(tried) >= maxAttempts || ctx.Err() != nil {
			break
		}
		// In fallback every member is out of local rotation: try them
		// anyway, without a rotation verdict (their ejection stands).
		var admitted rotation.Call
		if !fallback {
			var ok bool
			var trs []rotation.Transition
			admitted, ok, trs = gm.rot.Begin()
			g.applyRotation(gm, trs)
			if !ok {
				continue // on probation with a trial call already out
			}
		}
		if len(tried) > 0 {
			prev := tried[len(tried)-1]
			// A call moved off a member that left rotation meanwhile is
			// re-routed, not retried: it adds no load the backups would
			// not get anyway, so it spends no retry budget.
			if !errors.Is(lastErr, errMemberEjected) && !g.budget.retry() {
				gm.rot.Abandon(admitted)
				g.log.Warn("retry_budget_exhausted", "group", g.cfg.ID, "tool", q.tool)
				break
			}
			g.log.Info("failover", "group", g.cfg.ID, "from", prev, "to", gm.ID(), "tool", q.tool, "reason", string(lastClass))
			g.obs.Failover(g.cfg.ID, prev, gm.ID(), lastClass)
		}
		tried = append(tried, gm.ID())
		more := i < len(cands)-1 && len(tried) < maxAttempts
		res, class, err := g.attempt(ctx, global, gm, admitted, q, attemptPlan{more: more, first: len(tried) == 1,
			safe: opts.SafeToRepeat || g.safeToRepeat(gm, q.tool)})
		if !class.Failed(g.cfg.CircuitBreaker.CountToolErrors) {
			if err != nil { // the caller's error: the member answered, the call failed
				return nil, class, tried, &CallError{Type: errorTypeOf(class), Target: g.cfg.ID, Msg: "rejected by " + gm.ID(), Err: err,
					Member: gm.ID(), Attempts: len(tried)}
			}
			res.Member, res.Attempts = gm.ID(), len(tried)
			g.served(gm)
			return res, class, tried, nil
		}
		lastErr, lastClass, lastRes = err, class, res
		if !class.Retryable(opts.SafeToRepeat || g.safeToRepeat(gm, q.tool)) {
			break
		}
	}
	if lastClass == "" {
		return nil, outcome.ConnectError, tried, &CallError{Type: ErrNoAvailableMember, Target: g.cfg.ID,
			Msg: "no member could take the call: members on probation are busy"}
	}
	prev := tried[len(tried)-1]
	if lastErr == nil {
		// A counted tool error (count_tool_errors): the result is the answer.
		lastRes.Member, lastRes.Attempts = prev, len(tried)
		return lastRes, lastClass, tried, nil
	}
	return nil, lastClass, tried, &CallError{Type: errorTypeOf(lastClass), Target: g.cfg.ID,
		Msg: fmt.Sprintf("call failed after %d attempt(s), last on %s", len(tried), prev), Err: lastErr,
		Member: prev, Attempts: len(tried)}
}

// safeToRepeat reports whether tool may be sent again to another member
// after a timeout, transport or server error: it is annotated read-only or
// idempotent by the member, or listed in failover.retry_on.
func (g *Group) safeToRepeat(gm *groupMember, tool string) bool {
	if slices.Contains(g.cfg.Failover.RetryOn, tool) {
		return true
	}
	return annotatedSafe(gm.client, tool)
}

// annotatedSafe reports whether the member annotates tool read-only or idempotent.
func annotatedSafe(c *upstream.Client, tool string) bool {
	t, ok := c.Tool(tool)
	return ok && t.Annotations != nil && (t.Annotations.ReadOnlyHint || t.Annotations.IdempotentHint)
}

// served tracks the member a priority group serves from: the member that
// answered the last successful call. A change to a higher-priority member
// is a failback; to a lower one, a move to the backup.
func (g *Group) served(gm *groupMember) {
	if g.cfg.Strategy != fleetfile.StrategyPriority || gm.rot.Status().Phase != rotation.In {
		return // a trial call on probation does not make a member active
	}
	g.mu.Lock()
	prev := g.active
	g.active = gm.ID()
	g.mu.Unlock()
	if prev == gm.ID() {
		return
	}
	g.obs.ActiveMember(g.cfg.ID, gm.ID())
	if prev == "" {
		return
	}
	if gm.spec.Priority < g.member(prev).spec.Priority {
		g.log.Info("failback", "group", g.cfg.ID, "from", prev, "to", gm.ID())
		g.obs.Failback(g.cfg.ID, prev, gm.ID())
	} else {
		g.log.Info("active_member_changed", "group", g.cfg.ID, "from", prev, "to", gm.ID())
	}
}

func (g *Group) applyBreaker(trs []breaker.Transition) {
	for _, tr := range trs {
		switch tr.To {
		case breaker.Open:
			g.log.Warn("circuit_opened", "group", g.cfg.ID, "from", tr.From.String(),
				"failure_threshold", g.cfg.CircuitBreaker.FailureThreshold)
		case breaker.HalfOpen:
			g.log.Info("circuit_half_open", "group", g.cfg.ID)
		case breaker.Closed:
			g.log.Info("circuit_closed", "group", g.cfg.ID, "from", tr.From.String())
		}
		g.obs.Breaker(g.cfg.ID, tr.To)
		if tr.To == breaker.Open {
			select {
			case g.opened <- struct{}{}:
			default:
			}
			for _, gm := range g.members {
				gm.startRecovery()
			}
		}
	}
}

func (g *Group) applyRotation(gm *groupMember, trs []rotation.Transition) {
	for _, tr := range trs {
		in := tr.To == rotation.In
		if in {
			g.log.Info("member_added_to_rotation", "group", g.cfg.ID, "member", gm.ID(), "reason", tr.Reason)
		} else if tr.To == rotation.Out {
			g.log.Warn("member_removed_from_rotation", "group", g.cfg.ID, "member", gm.ID(), "reason", tr.Reason,
				"consecutive_failures", gm.rot.Status().ConsecutiveFailures)
			c, _ := gm.lastFail.Load().(outcome.Class)
			gm.serverEjected.Store(serverEvidence(c))
			gm.startRecovery()
			gm.signalEjected()
		} else {
			g.log.Info("member_on_probation", "group", g.cfg.ID, "member", gm.ID(), "reason", tr.Reason)
		}
		g.obs.Rotation(g.cfg.ID, gm.ID(), in)
	}
}

func errorTypeOf(c outcome.Class) ErrorType {
	switch c {
	case outcome.ConnectError:
		return ErrConnect
	case outcome.Timeout:
		return ErrTimeout
	case outcome.ServerError:
		return ErrServer
	case outcome.CallerError:
		return ErrCaller
	case outcome.ToolError:
		return ErrToolError
	}
	return ErrTransport
}
