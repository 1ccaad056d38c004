// Package rotation is the data plane's passive, per-member rotation: it
// takes a member out of local rotation when real calls on it keep failing,
// keeps it out until an active probe started after the ejection passes, or
// at the latest for an ejection time that doubles with each consecutive
// ejection, then lets single calls test it again before it returns, much like
// Envoy's outlier detection.
//
// A Tracker follows one member. It does no I/O, logging or metrics: methods
// that change the phase return the transitions they caused, and the caller
// reports them. The transitions returned by successive calls form one
// unbroken chain: each Transition.From equals the To of the one before it.
//
// Each call on the member goes through Begin, which admits or refuses it, and
// then through exactly one of Finish (the call's outcome) or Abandon (no
// verdict). Eligible answers Begin's question without reserving anything.
package rotation

import (
	"strconv"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/internal/clock"
)

// Phase is where a member stands in local rotation.
type Phase int

// The phases of a member. The zero value is In.
const (
	// In: the member is in rotation and receives calls.
	In Phase = iota
	// Out: the member is ejected and receives no calls until its ejection
	// time has passed.
	Out
	// Probation: the member is being re-tested, one call at a time.
	Probation
)

// String returns "in", "out" or "probation".
func (p Phase) String() string {
	switch p {
	case In:
		return "in"
	case Out:
		return "out"
	case Probation:
		return "probation"
	}
	return "Phase(" + strconv.Itoa(int(p)) + ")"
}

// Reasons carried by transitions; stable snake_case for events and logs.
const (
	ReasonConsecutiveFailures = "consecutive_failures" // In → Out
	ReasonEjectionExpired     = "ejection_expired"     // Out → Probation
	ReasonProbePassed         = "probe_passed"         // Out → Probation, by ProbePassed
	ReasonProbationFailed     = "probation_failed"     // Probation → Out
	ReasonProbationPassed     = "probation_passed"     // Probation → In
	ReasonReset               = "reset"                // any → In, by Reset
)

// Defaults applied to zero (or negative) Config fields.
const (
	DefaultUnhealthyThreshold = 2
	DefaultHealthyThreshold   = 1
	DefaultBaseEjection       = 5 * time.Second
	DefaultMaxEjection        = 60 * time.Second
)

// Config configures a Tracker. A zero or negative field takes its default.
type Config struct {
	// UnhealthyThreshold consecutive failures eject a member that is In (default 2).
	UnhealthyThreshold int
	// HealthyThreshold consecutive successes in Probation bring it back In (default 1).
	HealthyThreshold int
	// BaseEjection is the first ejection time; the n-th consecutive ejection
	// lasts BaseEjection × 2^(n-1) (default 5 s).
	BaseEjection time.Duration
	// MaxEjection caps the ejection time (default 60 s). A MaxEjection below
	// BaseEjection caps every ejection at MaxEjection.
	MaxEjection time.Duration
}

func (c Config) withDefaults() Config {
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.BaseEjection <= 0 {
		c.BaseEjection = DefaultBaseEjection
	}
	if c.MaxEjection <= 0 {
		c.MaxEjection = DefaultMaxEjection
	}
	return c
}

// ejection returns how long the n-th consecutive ejection (n ≥ 1) lasts.
func (c Config) ejection(n int) time.Duration {
	d := c.BaseEjection
	for i := 1; i < n && d < c.MaxEjection; i++ {
		if d > c.MaxEjection/2 {
			return c.MaxEjection
		}
		d *= 2
	}
	return min(d, c.MaxEjection)
}

// Transition is one phase change of a member.
type Transition struct {
	From, To Phase
	// At is when the change took effect. For Out→Probation it is the end of
	// the ejection, which may be earlier than the call that observed it.
	At time.Time
	// Reason is one of the Reason constants.
	Reason string
}

// Status is a snapshot of a Tracker, for status pages and tests.
type Status struct {
	// Phase is the effective phase: an Out member whose ejection time has
	// passed reports Probation even before Begin or Finish has observed it.
	Phase Phase
	// ConsecutiveFailures and ConsecutiveSuccesses count the latest run of
	// counted outcomes; at most one of them is non-zero.
	ConsecutiveFailures, ConsecutiveSuccesses int
	// EjectedUntil is the end of the current or latest ejection; zero while In.
	EjectedUntil time.Time
	// Ejections is the number of consecutive ejections without a return to
	// In; it sets the next ejection time.
	Ejections int
}

// Call identifies one call admitted by Begin, so that its outcome can be
// matched to the epoch it was admitted in. The zero value is not admitted:
// Finish and Abandon ignore it, so a caller that sends a call without Begin
// (a fallback call) may pass the zero Call.
type Call struct {
	epoch uint64 // the Tracker's epoch at admission; 0 for the zero Call
	trial bool   // the Probation trial call
}

// Tracker follows the local rotation of one member. Create one with New; the
// zero value is not usable. A Tracker is safe for concurrent use.
//
// Calls are admitted with Begin and each admitted call is settled exactly
// once, with Finish or Abandon. The Tracker keeps an epoch that changes on
// every phase change, on Reset and when a trial call is released; only
// outcomes of calls admitted in the current epoch count.
type Tracker struct {
	clk clock.Clock
	cfg Config

	mu        sync.Mutex
	phase     Phase // stored phase; Out may be effectively Probation, see settle
	epoch     uint64
	failures  int
	successes int
	until     time.Time
	ejectedAt time.Time
	ejections int
	probing   bool // the trial call is outstanding
}

// New returns a Tracker for a member that is In. Zero fields of cfg take
// their defaults; a nil clk means the wall clock.
func New(cfg Config, clk clock.Clock) *Tracker {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Tracker{clk: clk, cfg: cfg.withDefaults(), epoch: 1}
}

// Eligible reports, without changing anything, whether Begin would admit a
// call now:
//
//   - In: true.
//   - Out: false until the ejection time has passed; then true, as Begin
//     would move the member to Probation and admit the trial call.
//   - Probation: true only if no trial call is outstanding.
//
// Eligible reserves nothing and returns no transitions; a later Begin may
// still refuse if another caller took the trial in between.
func (t *Tracker) Eligible() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.phase {
	case In:
		return true
	case Out:
		return !t.clk.Now().Before(t.until) // settle would also clear probing
	}
	return !t.probing
}

// Begin admits one call on the member and returns the transitions it
// caused. ok=false means the call must not be sent; c is then the zero Call.
//
//   - In: always admits.
//   - Out: refuses until the ejection time has passed; then the member moves
//     to Probation and Begin answers as in Probation.
//   - Probation: admits the single trial call if none is outstanding, and
//     refuses while one is. So a bad member costs at most one attempt at a
//     time.
//
// The caller must settle every admitted call exactly once, with Finish or
// Abandon; until then a trial call keeps the Probation slot.
func (t *Tracker) Begin() (c Call, ok bool, transitions []Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	transitions = t.settle(t.clk.Now(), nil)
	switch t.phase {
	case In:
		return Call{epoch: t.epoch}, true, transitions
	case Probation:
		if t.probing {
			return Call{}, false, transitions
		}
		t.probing = true
		return Call{epoch: t.epoch, trial: true}, true, transitions
	}
	return Call{}, false, transitions
}

// Finish counts the outcome of an admitted call (an outcome class that
// counts against the member, or a success) and returns the transitions it
// caused. An Out member whose ejection time has passed moves to Probation
// first, whatever the call.
//
// The outcome is ignored if c was admitted in an earlier epoch or is the
// zero Call: a late outcome of a call sent before an ejection (or before
// Reset) can neither extend the ejection nor decide the probation. Otherwise:
//
//   - In: a success clears the failure count; UnhealthyThreshold
//     consecutive failures move the member Out at once.
//   - Probation (only the trial call's outcome counts): the trial slot is
//     released. A failure moves the member Out for the next, doubled,
//     ejection time; a success counts toward HealthyThreshold, and
//     HealthyThreshold consecutive successes move the member In and forget
//     its past ejections. Until then the next Begin admits the next trial.
func (t *Tracker) Finish(c Call, success bool) []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clk.Now()
	ts := t.settle(now, nil)
	if c.epoch != t.epoch {
		return ts
	}
	switch t.phase {
	case In:
		if success {
			t.failures, t.successes = 0, t.successes+1
			return ts
		}
		t.failures, t.successes = t.failures+1, 0
		if t.failures >= t.cfg.UnhealthyThreshold {
			ts = t.eject(now, ReasonConsecutiveFailures, ts)
		}
	case Probation:
		if !c.trial || !t.probing {
			return ts
		}
		if !success {
			t.failures, t.successes = t.failures+1, 0
			return t.eject(now, ReasonProbationFailed, ts)
		}
		t.failures, t.successes = 0, t.successes+1
		if t.successes < t.cfg.HealthyThreshold {
			t.releaseTrial()
			return ts
		}
		t.probing = false
		t.ejections = 0
		t.until = time.Time{}
		ts = t.moveTo(In, now, ReasonProbationPassed, ts)
	}
	return ts
}

// Abandon releases an admitted call without a verdict, when the caller gave
// up before the member answered: a trial call frees the Probation slot for
// the next Begin, and counts neither way. Abandon changes no phase. It
// ignores the zero Call and calls admitted in an earlier epoch.
func (t *Tracker) Abandon(c Call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.epoch == t.epoch && c.trial && t.phase == Probation && t.probing {
		t.releaseTrial()
	}
}

// ProbePassed records that an active probe of the member, started at
// started, passed. A member that is Out moves to Probation at once if the
// probe started after its ejection (an older probe says nothing about the
// failures that ejected it), so the next call tests it: failback on
// evidence rather than after the ejection time. In any other phase it
// changes nothing.
func (t *Tracker) ProbePassed(started time.Time) []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clk.Now()
	ts := t.settle(now, nil)
	if t.phase != Out || started.Before(t.ejectedAt) {
		return ts
	}
	t.probing = false
	return t.moveTo(Probation, now, ReasonProbePassed, ts)
}

// Status returns the member's current status.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{
		Phase:                t.phase,
		ConsecutiveFailures:  t.failures,
		ConsecutiveSuccesses: t.successes,
		EjectedUntil:         t.until,
		Ejections:            t.ejections,
	}
	if t.phase == Out && !t.clk.Now().Before(t.until) {
		st.Phase = Probation
	}
	return st
}

// Reset puts the member back In with clean counters and no ejection history,
// for a config reload or an operator action, and starts a new epoch: the
// outcomes of calls admitted before Reset are ignored. It returns the
// transitions caused, none if the member was already In.
func (t *Tracker) Reset() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clk.Now()
	ts := t.settle(now, nil)
	t.failures, t.successes, t.ejections = 0, 0, 0
	t.until = time.Time{}
	t.probing = false
	if t.phase == In {
		t.epoch++
		return ts
	}
	return t.moveTo(In, now, ReasonReset, ts)
}

// settle applies the lazy Out→Probation change once the ejection time has
// passed. t.mu must be held.
func (t *Tracker) settle(now time.Time, ts []Transition) []Transition {
	if t.phase != Out || now.Before(t.until) {
		return ts
	}
	t.probing = false
	return t.moveTo(Probation, t.until, ReasonEjectionExpired, ts)
}

// eject moves the member Out for its next ejection time. t.mu must be held.
func (t *Tracker) eject(now time.Time, reason string, ts []Transition) []Transition {
	t.ejections++
	t.ejectedAt = now
	t.until = now.Add(t.cfg.ejection(t.ejections))
	t.probing = false
	return t.moveTo(Out, now, reason, ts)
}

// releaseTrial frees the Probation slot and starts a new epoch, so a second
// Finish or Abandon of the same trial call is ignored. t.mu must be held.
func (t *Tracker) releaseTrial() {
	t.probing = false
	t.epoch++
}

// moveTo changes the phase, starts a new epoch and appends the transition.
// t.mu must be held.
func (t *Tracker) moveTo(to Phase, at time.Time, reason string, ts []Transition) []Transition {
	from := t.phase
	t.phase = to
	t.epoch++
	return append(ts, Transition{From: from, To: to, At: at, Reason: reason})
}
