// Package health is the state machine of a member's active health checks
// (docs/design.md §3.4): probes every health_check_interval_s with ±10 % jitter;
// max_consecutive_failures failed probes make a READY member DEGRADED; while
// DEGRADED, probes back off 1, 2, 4 … s up to the interval; a passing probe
// re-initializes the session (INITIALIZING) and returns the member to READY.
package health

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/internal/clock"
)

// State is a member's lifecycle state. The numbers are the values of the
// mcp_hangar_mcp_server_state metric.
type State int

// The member states.
const (
	Cold         State = 0 // no session yet (never used, or stopped when idle)
	Initializing State = 1 // a session is being opened
	Ready        State = 2 // probes pass
	Degraded     State = 3 // max_consecutive_failures probes failed in a row
	Dead         State = 4 // shut down; never used again
)

func (s State) String() string {
	switch s {
	case Cold:
		return "cold"
	case Initializing:
		return "initializing"
	case Ready:
		return "ready"
	case Degraded:
		return "degraded"
	case Dead:
		return "dead"
	}
	return "unknown"
}

// Serving reports whether a member in this state may receive calls.
func (s State) Serving() bool { return s == Cold || s == Initializing || s == Ready }

// Config holds the probe settings of one member.
type Config struct {
	Interval               time.Duration // default 30 s
	MaxConsecutiveFailures int           // default 3
}

// Transition is a change of state.
type Transition struct {
	From, To State
	At       time.Time
}

// Status is a point-in-time view of a Tracker.
type Status struct {
	State               State
	ConsecutiveFailures int
	LastProbe           time.Time
	LastProbeOK         bool
	LastError           string
	Since               time.Time // when State was entered
}

// Tracker follows one member's probe results. It is safe for concurrent use.
type Tracker struct {
	cfg Config
	clk clock.Clock

	mu sync.Mutex
	st Status
}

// New returns a tracker in state Cold.
func New(cfg Config, clk clock.Clock) *Tracker {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.MaxConsecutiveFailures <= 0 {
		cfg.MaxConsecutiveFailures = 3
	}
	return &Tracker{cfg: cfg, clk: clk, st: Status{State: Cold, Since: clk.Now()}}
}

// Status returns the current status.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// State returns the current state.
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.State
}

// ProbeFailed records a failed probe. It returns the new consecutive failure
// count and the transition to Degraded when this failure crossed the threshold.
func (t *Tracker) ProbeFailed(reason string) (consecutive int, tr []Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.State == Dead {
		return t.st.ConsecutiveFailures, nil
	}
	now := t.clk.Now()
	t.st.ConsecutiveFailures++
	t.st.LastProbe, t.st.LastProbeOK, t.st.LastError = now, false, reason
	if t.st.State != Degraded && t.st.ConsecutiveFailures >= t.cfg.MaxConsecutiveFailures {
		tr = t.set(Degraded, now)
	}
	return t.st.ConsecutiveFailures, tr
}

// ProbePassed records a passing probe. A Degraded member moves to
// Initializing: the caller re-opens its session and then calls Initialized.
// A Cold or Initializing member becomes Ready.
func (t *Tracker) ProbePassed() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.State == Dead {
		return nil
	}
	now := t.clk.Now()
	t.st.ConsecutiveFailures = 0
	t.st.LastProbe, t.st.LastProbeOK, t.st.LastError = now, true, ""
	switch t.st.State {
	case Degraded:
		return t.set(Initializing, now)
	case Cold, Initializing:
		return t.set(Ready, now)
	}
	return nil
}

// Initialized records that a session was (re-)opened: the member is Ready
// unless probes have since degraded it.
func (t *Tracker) Initialized() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.State == Cold || t.st.State == Initializing {
		return t.set(Ready, t.clk.Now())
	}
	return nil
}

// Stopped records that the session was closed on purpose (idle): Cold.
func (t *Tracker) Stopped() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.State == Ready {
		return t.set(Cold, t.clk.Now())
	}
	return nil
}

// Kill marks the member Dead (shut down).
func (t *Tracker) Kill() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.set(Dead, t.clk.Now())
}

func (t *Tracker) set(s State, now time.Time) []Transition {
	if t.st.State == s {
		return nil
	}
	tr := []Transition{{From: t.st.State, To: s, At: now}}
	t.st.State, t.st.Since = s, now
	return tr
}

// NextProbe returns how long to wait before the next probe: the interval
// with ±10 % jitter while the member is not Degraded; while Degraded, 1 s
// doubled for every failure past the threshold, capped at the interval.
// rnd supplies the jitter (a value in [0,1)); nil means rand.Float64.
func (t *Tracker) NextProbe(rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	t.mu.Lock()
	st, cfg := t.st, t.cfg
	t.mu.Unlock()
	if st.State == Degraded {
		d := time.Second
		for i := cfg.MaxConsecutiveFailures; i < st.ConsecutiveFailures && d < cfg.Interval; i++ {
			d *= 2
		}
		return min(d, cfg.Interval)
	}
	jitter := (rnd()*0.2 - 0.1) * float64(cfg.Interval)
	return cfg.Interval + time.Duration(jitter)
}
