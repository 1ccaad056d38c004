// Package breaker is the group circuit breaker of the data plane: a small
// state machine that stops sending calls to a group whose calls keep failing
// after failover, and lets a few probe calls through after a pause to find
// out whether the group has recovered.
//
// The breaker does no I/O, logging or metrics. Every method that changes the
// state returns the transitions it caused, and the caller reports them. The
// transitions returned by successive calls form one unbroken chain: each
// Transition.From equals the To of the transition before it.
package breaker

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/internal/clock"
)

// State is the state of a breaker.
type State int

// The states of a breaker. The zero value is Closed.
const (
	// Closed admits every call and counts consecutive failures.
	Closed State = iota
	// Open rejects every call until Config.ResetTimeout has passed.
	Open
	// HalfOpen admits at most Config.ProbeCount calls at a time to test the group.
	HalfOpen
)

// String returns "closed", "open" or "half_open", the names used in metrics
// labels and events.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Defaults applied to zero (or negative) Config fields.
const (
	DefaultFailureThreshold = 10
	DefaultResetTimeout     = 60 * time.Second
	DefaultProbeCount       = 1
)

// Config configures a breaker. A zero or negative field takes its default.
type Config struct {
	// FailureThreshold consecutive failed calls open a closed breaker (default 10).
	FailureThreshold int
	// ResetTimeout is how long the breaker stays open before it becomes
	// half-open (default 60 s).
	ResetTimeout time.Duration
	// ProbeCount is both the number of calls a half-open breaker admits at
	// once and the number of successes, counted over the half-open period,
	// that close it (default 1).
	ProbeCount int
}

func (c Config) withDefaults() Config {
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.ResetTimeout <= 0 {
		c.ResetTimeout = DefaultResetTimeout
	}
	if c.ProbeCount <= 0 {
		c.ProbeCount = DefaultProbeCount
	}
	return c
}

// Transition is one state change of a breaker.
type Transition struct {
	From, To State
	// At is when the change took effect. For Open→HalfOpen it is the moment
	// the reset timeout ran out, which may be earlier than the call that
	// observed it.
	At time.Time
}

// ErrOpen is returned by Admit when the breaker rejects a call. It is
// returned as is, never wrapped, so a rejection allocates nothing.
var ErrOpen = errors.New("breaker: open")

// Status is a snapshot of a breaker, for status pages and tests.
type Status struct {
	// State is the effective state: an open breaker whose reset timeout has
	// passed reports HalfOpen even before a call has observed it.
	State State
	// ConsecutiveFailures counts failed calls since the last success or reset.
	ConsecutiveFailures int
	// OpenedAt is when the breaker last opened; zero while Closed.
	OpenedAt time.Time
	// HalfOpensAt is when an open breaker becomes half-open; zero unless
	// State is Open.
	HalfOpensAt time.Time
	// Config is the configuration in use, with defaults applied.
	Config Config
}

// Breaker is a group circuit breaker. Create one with New; the zero value is
// not usable. A Breaker is safe for concurrent use.
type Breaker struct {
	clk clock.Clock
	cfg Config

	mu       sync.Mutex
	state    State // stored state; Open may be effectively HalfOpen, see settle
	gen      uint64
	failures int
	openedAt time.Time
	probes   int // half-open calls in flight
	passed   int // half-open calls that succeeded in this half-open period
}

// New returns a closed breaker. Zero fields of cfg take their defaults; a nil
// clk means the wall clock.
func New(cfg Config, clk clock.Clock) *Breaker {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Breaker{clk: clk, cfg: cfg.withDefaults()}
}

// Admit asks to start one group call.
//
// When the breaker rejects the call, Admit returns ErrOpen and a nil Call. A
// rejection takes well under a microsecond and does not allocate.
//
// Otherwise the caller must finish the Call once: Done with the call's
// result (success is false for a group call that failed after failover),
// which returns the transitions the result caused, or Abandon when the
// caller gave up before any member answered (no verdict). Finishing it
// again is a no-op. A result is ignored if the breaker changed state after
// the call was admitted (for example a slow failure of a call admitted
// while Closed that arrives after the breaker opened), so late results
// never reopen or close the breaker. A Call is safe to finish from any
// goroutine.
//
// transitions lists the state changes Admit itself caused: Open→HalfOpen
// when the reset timeout has passed.
func (b *Breaker) Admit() (c *Call, transitions []Transition, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	transitions = b.settle(now, nil)
	switch b.state {
	case Open:
		return nil, transitions, ErrOpen
	case HalfOpen:
		if b.probes >= b.cfg.ProbeCount {
			return nil, transitions, ErrOpen
		}
		b.probes++
	}
	return &Call{b: b, gen: b.gen}, transitions, nil
}

// Call is one admitted call; finishing it twice is a no-op.
type Call struct {
	b        *Breaker
	gen      uint64
	finished bool // guarded by b.mu
}

// Abandon finishes the call without a verdict: it frees a half-open probe
// slot and changes no count.
func (c *Call) Abandon() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	if c.gen == b.gen && b.state == HalfOpen {
		b.probes--
	}
}

// Done finishes the call with its result (see Admit).
func (c *Call) Done(success bool) []Transition {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.finished {
		return nil
	}
	c.finished = true
	if c.gen != b.gen {
		return nil // admitted in an earlier state: stale
	}
	now := b.clk.Now()
	if success {
		b.failures = 0
	} else {
		b.failures++
	}
	switch b.state {
	case Closed:
		if !success && b.failures >= b.cfg.FailureThreshold {
			return b.moveTo(Open, now, nil)
		}
	case HalfOpen:
		b.probes--
		if !success {
			return b.moveTo(Open, now, nil)
		}
		b.passed++
		if b.passed >= b.cfg.ProbeCount {
			return b.moveTo(Closed, now, nil)
		}
	}
	return nil
}

// Status returns the breaker's current status.
func (b *Breaker) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Status{
		State:               b.state,
		ConsecutiveFailures: b.failures,
		Config:              b.cfg,
	}
	if b.state == Closed {
		return st
	}
	st.OpenedAt = b.openedAt
	if b.state == Open {
		st.HalfOpensAt = b.openedAt.Add(b.cfg.ResetTimeout)
		if !b.clk.Now().Before(st.HalfOpensAt) {
			st.State = HalfOpen
			st.HalfOpensAt = time.Time{}
		}
	}
	return st
}

// Reset closes the breaker and clears its failure count, as an operator
// action. Results of calls admitted before the reset are ignored. It returns
// the transitions caused, none if the breaker was already closed.
func (b *Breaker) Reset() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	ts := b.settle(now, nil)
	b.failures = 0
	if b.state == Closed {
		return ts
	}
	return b.moveTo(Closed, now, ts)
}

// ForceOpen opens the breaker now, for when the control plane reports the
// group's breaker open across the fleet. The breaker then rejects calls for a
// full ResetTimeout from now; if it was already open the timeout restarts
// without a transition. Results of calls admitted before are ignored.
func (b *Breaker) ForceOpen() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	ts := b.settle(now, nil)
	if b.state == Open {
		b.openedAt = now
		b.gen++
		return ts
	}
	return b.moveTo(Open, now, ts)
}

// ProbePassed records that an active probe of a member of the group,
// started at started, passed: an open breaker goes half-open at once,
// without waiting for the rest of its reset timeout, so that real trial
// calls can decide (docs/design.md §3.4). A probe started before the
// breaker opened, or any probe in another state, changes nothing.
func (b *Breaker) ProbePassed(started time.Time) []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	ts := b.settle(now, nil)
	if b.state != Open || started.Before(b.openedAt) {
		return ts
	}
	return b.moveTo(HalfOpen, now, ts)
}

// Settle applies the Open→HalfOpen change due when the reset timeout has
// passed and returns it, so that a timer can report half-open the moment it
// happens rather than at the next call.
func (b *Breaker) Settle() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settle(b.clk.Now(), nil)
}

// settle applies the lazy Open→HalfOpen change once the reset timeout has
// passed, appending it to ts. b.mu must be held.
func (b *Breaker) settle(now time.Time, ts []Transition) []Transition {
	if b.state != Open {
		return ts
	}
	at := b.openedAt.Add(b.cfg.ResetTimeout)
	if now.Before(at) {
		return ts
	}
	return b.moveTo(HalfOpen, at, ts)
}

// moveTo changes the state, starts a new generation so results of calls
// admitted earlier are ignored, and appends the transition to ts. b.mu must
// be held.
func (b *Breaker) moveTo(to State, at time.Time, ts []Transition) []Transition {
	from := b.state
	b.state = to
	b.gen++
	b.probes, b.passed = 0, 0
	switch to {
	case Open:
		b.openedAt = at
	case Closed:
		b.openedAt = time.Time{}
	}
	return append(ts, Transition{From: from, To: to, At: at})
}
