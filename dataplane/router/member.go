package router

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/rotation"
	"github.com/hangarmesh/hangar/dataplane/upstream"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// probeTimeout bounds one active health check (docs/design.md §3.4).
const probeTimeout = 5 * time.Second

// Member is one upstream server of the fleet with its connection and its
// active health state. Groups share Members.
type Member struct {
	cfg    *fleetfile.Server
	client *upstream.Client
	health *health.Tracker
	clk    clock.Clock
	log    *slog.Logger
	obs    Observer

	inFlight atomic.Int64
	// probing is cleared while the control plane assigns this member's
	// probes to other agents (issue: control plane). Standalone: always set.
	probing atomic.Bool
	// opened wakes the probe loop when a session opens or a probe is due
	// now (a newly assigned member).
	opened chan struct{}
	// lastCall is when a call was last sent to the member (unix ns).
	lastCall atomic.Int64
	// listTools is set for members of front_door groups: their tools must
	// be known before any call, so a subprocess child is started once.
	listTools bool
	// groups are the groups the member belongs to (set by New before Run):
	// a passing probe may bring it back into their rotation or half-open
	// their breaker, and while it is out or their breaker is open it is
	// probed on a short backoff (recovery).
	groups []*Group
	// rewait makes the probe loop recompute its wait (recovery started).
	rewait chan struct{}
	// recoverStep counts recovery probes since recovery began; only the
	// probe loop touches it.
	recoverStep int
	// lat is the member's recent answer times per tool.
	lat latencies
	// schemas are the member's tools' resolved input schemas.
	schemas schemas
}

func newMember(cfg *fleetfile.Server, clk clock.Clock, log *slog.Logger, obs Observer) (*Member, error) {
	m := &Member{cfg: cfg, clk: clk, log: log, obs: obs, opened: make(chan struct{}, 1), rewait: make(chan struct{}, 1)}
	m.health = health.New(health.Config{
		Interval:               cfg.HealthCheckInterval,
		MaxConsecutiveFailures: cfg.MaxConsecutiveFailures,
	}, clk)
	var err error
	m.client, err = upstream.New(cfg, upstream.Options{
		Clock:  clk,
		Logger: log,
		OnSessionChange: func(open bool) {
			if open {
				m.applyHealth(m.health.Initialized())
				m.wake()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	m.probing.Store(true)
	return m, nil
}

// ID returns the member's server id.
func (m *Member) ID() string { return m.cfg.ID }

// State returns the member's health state.
func (m *Member) State() health.State { return m.health.State() }

// run probes the member until ctx ends. The first probe runs at once, so
// members are READY (and their tools known) soon after start.
func (m *Member) run(ctx context.Context) {
	m.obs.MemberState(m.cfg.ID, m.health.State())
	due := m.clk.Now()
	for {
		if wait := due.Sub(m.clk.Now()); wait > 0 {
			t := m.clk.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			case <-m.opened:
				t.Stop() // a child started (time its idle stop) or a probe is due
			case <-m.rewait:
				t.Stop() // recovery began: probe sooner
				if next := m.clk.Now().Add(m.nextDelay()); next.Before(due) {
					due = next
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.reapIdle()
		if m.shouldProbe() {
			m.probe(ctx)
		}
		due = m.clk.Now().Add(m.nextDelay())
	}
}

// nextDelay is the wait before the next probe: the health tracker's
// (interval with jitter, or its backoff while DEGRADED), shortened while
// the member recovers (out of a group's local rotation, or a group's
// breaker open) to 1, 2, 4 … s up to the interval, or up to the group's
// reset_timeout_s for an open breaker (docs/design.md §3.4).
func (m *Member) nextDelay() time.Duration {
	delay := m.health.NextProbe(rand.Float64)
	if need, limit := m.recovering(); need {
		step := time.Second << min(m.recoverStep, 16)
		m.recoverStep++
		delay = min(delay, step, limit)
	} else {
		m.recoverStep = 0
	}
	if left, ok := m.idleLeft(); ok && left < delay {
		delay = left // wake to stop the child when it turns idle
	}
	return delay
}

// recovering reports whether a group has the member out of local rotation
// or its breaker open, and the longest recovery backoff allowed.
func (m *Member) recovering() (need bool, limit time.Duration) {
	limit = m.cfg.HealthCheckInterval
	if limit <= 0 {
		limit = 30 * time.Second
	}
	for _, g := range m.groups {
		if gm := g.member(m.cfg.ID); gm != nil && gm.rot.Status().Phase == rotation.Out {
			need = true
		}
		if g.breaker.Status().State == breaker.Open {
			need = true
			limit = min(limit, g.cfg.CircuitBreaker.ResetTimeout)
		}
	}
	return need, limit
}

// startRecovery makes the probe loop move to the recovery backoff now.
func (m *Member) startRecovery() {
	select {
	case m.rewait <- struct{}{}:
	default:
	}
}

// shouldProbe: a subprocess member's child starts on first use, so it is
// probed only while it runs, except that a member of a front_door group is
// started once to learn the tools the front door lists (it then stops when
// idle); a probe never restarts an idle child. Remote members are always
// probed.
func (m *Member) shouldProbe() bool {
	if !m.probing.Load() {
		// Probes assigned to other agents; but a member this agent ejected
		// (or whose group's breaker is open here) is probed here to return.
		if need, _ := m.recovering(); !need {
			return false
		}
	}
	if m.cfg.Mode == fleetfile.ModeSubprocess {
		return m.client.Connected() || (m.listTools && m.client.Tools() == nil)
	}
	return true
}

// idleLeft returns how long until a running subprocess child turns idle.
func (m *Member) idleLeft() (time.Duration, bool) {
	if m.cfg.Mode != fleetfile.ModeSubprocess || m.cfg.IdleTTL <= 0 || !m.client.Connected() {
		return 0, false
	}
	return max(m.cfg.IdleTTL-m.client.IdleFor(), 10*time.Millisecond), true
}

// reapIdle stops a subprocess child that has been idle for idle_ttl_s.
func (m *Member) reapIdle() {
	if m.cfg.Mode != fleetfile.ModeSubprocess || m.cfg.IdleTTL <= 0 {
		return
	}
	if idle := m.client.IdleFor(); idle >= m.cfg.IdleTTL && m.inFlight.Load() == 0 {
		m.client.Reset()
		m.log.Info("mcp_server_stopped", "mcp_server", m.cfg.ID, "reason", "idle", "idle_s", idle.Seconds())
		m.applyHealth(m.health.Stopped())
	}
}

// probe runs one active health check: tools/list within probeTimeout.
func (m *Member) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := m.clk.Now()
	_, err := m.client.ListTools(pctx)
	if ctx.Err() != nil {
		return // shutting down: not a verdict on the member
	}
	m.obs.Probe(m.cfg.ID, err == nil, m.clk.Now().Sub(start))
	if err != nil {
		n, tr := m.health.ProbeFailed(err.Error())
		m.log.Warn("health_check_failed", "mcp_server", m.cfg.ID, "consecutive_failures", n, "error", err.Error())
		m.applyHealth(tr)
		return
	}
	tr := m.health.ProbePassed()
	m.applyHealth(tr)
	if len(tr) > 0 && tr[0].To == health.Initializing {
		// Back from DEGRADED: start over with a fresh session.
		m.client.Reset()
		if _, err := m.client.ListTools(pctx); err != nil {
			n, tr := m.health.ProbeFailed(err.Error())
			m.log.Warn("health_check_failed", "mcp_server", m.cfg.ID, "consecutive_failures", n, "error", err.Error())
			m.applyHealth(tr)
			return
		}
		m.applyHealth(m.health.Initialized())
	}
	for _, g := range m.groups {
		g.probePassed(m.cfg.ID, start)
	}
}

// applyHealth logs and reports health transitions.
func (m *Member) applyHealth(trs []health.Transition) {
	for _, tr := range trs {
		switch tr.To {
		case health.Degraded:
			m.log.Warn("mcp_server_degraded", "mcp_server", m.cfg.ID, "from", tr.From.String(),
				"consecutive_failures", m.health.Status().ConsecutiveFailures)
		case health.Ready:
			if tr.From == health.Initializing || tr.From == health.Degraded {
				m.log.Info("mcp_server_recovered", "mcp_server", m.cfg.ID, "from", tr.From.String())
			} else {
				m.log.Info("mcp_server_ready", "mcp_server", m.cfg.ID, "from", tr.From.String())
			}
		default:
			m.log.Info("mcp_server_state_changed", "mcp_server", m.cfg.ID, "from", tr.From.String(), "to", tr.To.String())
		}
		m.obs.MemberState(m.cfg.ID, tr.To)
	}
}

// Info returns the member's answer to initialize on the shared session
// (nil before one opened).
func (m *Member) Info() *mcp.InitializeResult { return m.client.InitializeResult() }

// Tools returns the member's tools from its last tools/list, by name.
func (m *Member) Tools() []*mcp.Tool { return m.client.Tools() }

// wake interrupts the probe loop's wait.
func (m *Member) wake() {
	select {
	case m.opened <- struct{}{}:
	default:
	}
}

// called records that a call is being sent to the member.
func (m *Member) called() { m.lastCall.Store(m.clk.Now().UnixNano()) }

// healthy reports whether this agent's probes let the member serve. A
// member this agent does not probe (the control plane assigned its probes
// to other agents) is judged by the global view alone: its own last verdict
// may be stale.
func (m *Member) healthy() bool {
	return m.State().Serving() || !m.probing.Load()
}
