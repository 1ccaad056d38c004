// Package metrics exports the agent's Prometheus metrics on a per-process
// registry. Names keep MCP Hangar's mcp_hangar_ prefix and labels so its
// dashboards and alerts keep working (docs/design.md §5). Agent implements
// router.Observer.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/version"
)

// Agent holds the agent's metrics. It is safe for concurrent use.
type Agent struct {
	Registry *prometheus.Registry

	serverState   *prometheus.GaugeVec
	breakerState  *prometheus.GaugeVec
	toolCalls     *prometheus.CounterVec
	toolErrors    *prometheus.CounterVec
	callDuration  *prometheus.HistogramVec
	healthChecks  *prometheus.CounterVec
	healthLatency *prometheus.HistogramVec
	attempts      *prometheus.CounterVec
	rotation      *prometheus.GaugeVec
	activeMember  *prometheus.GaugeVec
	failovers     *prometheus.CounterVec
	failbacks     *prometheus.CounterVec
	rejections    *prometheus.CounterVec
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New registers the agent's metrics, plus Go and process collectors, on a
// new registry.
func New() *Agent {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.Collector("mcp_hangar_build_info"))
	a := &Agent{Registry: r}
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	a.serverState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcp_hangar_mcp_server_state",
		Help: "Current MCP server state (0 cold, 1 initializing, 2 ready, 3 degraded, 4 dead)."}, []string{"mcp_server"})
	a.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcp_hangar_circuit_breaker_state",
		Help: "Group circuit breaker state, one-hot over state (closed, open, half_open)."}, []string{"mcp_server", "state"})
	a.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_tool_calls_total",
		Help: "Total tool invocations by the member that served (mcp_server; the last one tried for a failed call, \"\" if none was), group (\"\" for a server called directly) and status (success or error)."},
		[]string{"mcp_server", "group", "tool", "status"})
	a.toolErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_tool_call_errors_total",
		Help: "Failed tool invocations by the last member tried, group and error type."}, []string{"mcp_server", "group", "tool", "error_type"})
	a.callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcp_hangar_tool_call_duration_seconds",
		Help: "Tool invocation latency, failover included, by the member that served and group.", Buckets: latencyBuckets},
		[]string{"mcp_server", "group", "tool"})
	a.healthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_health_checks_total",
		Help: "Active health checks by result (healthy or unhealthy)."}, []string{"mcp_server", "result"})
	a.healthLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcp_hangar_health_check_duration_seconds",
		Help: "Active health check latency.", Buckets: latencyBuckets}, []string{"mcp_server"})
	a.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_attempts_total",
		Help: "Attempts of calls on members by outcome class (ok, connect_error, timeout, transport_error, server_error, caller_error, tool_error)."},
		[]string{"group", "mcp_server", "outcome"})
	a.rotation = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcp_hangar_group_member_in_rotation",
		Help: "1 if the member is in the group's local rotation, else 0."}, []string{"group", "member"})
	a.activeMember = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcp_hangar_group_active_member",
		Help: "1 for the member a priority group serves from, else 0."}, []string{"group", "member"})
	a.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_group_failovers_total",
		Help: "Calls moved from one member to the next inside the call."}, []string{"group", "from", "to", "reason"})
	a.failbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_group_failbacks_total",
		Help: "Returns of a priority group to a higher-priority member."}, []string{"group", "to"})
	a.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_batch_circuit_breaker_rejections_total",
		Help: "Calls an open group circuit breaker rejected (CircuitOpen), by group."}, []string{"mcp_server"})
	for _, c := range []prometheus.Collector{a.serverState, a.breakerState, a.toolCalls, a.toolErrors, a.callDuration,
		a.healthChecks, a.healthLatency, a.attempts, a.rotation, a.activeMember, a.failovers, a.failbacks, a.rejections} {
		f(c)
	}
	return a
}

var _ router.Observer = (*Agent)(nil)

// MemberState implements router.Observer.
func (a *Agent) MemberState(member string, s health.State) {
	a.serverState.WithLabelValues(member).Set(float64(s))
}

// Probe implements router.Observer.
func (a *Agent) Probe(member string, ok bool, d time.Duration) {
	result := "healthy"
	if !ok {
		result = "unhealthy"
	}
	a.healthChecks.WithLabelValues(member, result).Inc()
	a.healthLatency.WithLabelValues(member).Observe(d.Seconds())
}

// Attempt implements router.Observer.
func (a *Agent) Attempt(group, member, _ string, class outcome.Class, _ time.Duration) {
	a.attempts.WithLabelValues(group, member, string(class)).Inc()
}

// Call implements router.Observer. mcp_server is the member that served
// (as MCP Hangar labels it), group the group ("" for a direct call).
func (a *Agent) Call(c router.CallRecord) {
	status := "success"
	if c.ErrType != "" {
		status = "error"
		a.toolErrors.WithLabelValues(c.Member, c.Group, c.Tool, string(c.ErrType)).Inc()
		if c.ErrType == router.ErrCircuitOpen {
			a.rejections.WithLabelValues(c.Target).Inc()
		}
	}
	a.toolCalls.WithLabelValues(c.Member, c.Group, c.Tool, status).Inc()
	a.callDuration.WithLabelValues(c.Member, c.Group, c.Tool).Observe(c.Duration.Seconds())
}

// Breaker implements router.Observer.
func (a *Agent) Breaker(group string, s breaker.State) {
	for _, st := range []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen} {
		v := 0.0
		if st == s {
			v = 1
		}
		a.breakerState.WithLabelValues(group, st.String()).Set(v)
	}
}

// Rotation implements router.Observer.
func (a *Agent) Rotation(group, member string, in bool) {
	v := 0.0
	if in {
		v = 1
	}
	a.rotation.WithLabelValues(group, member).Set(v)
}

// ActiveMember implements router.Observer.
func (a *Agent) ActiveMember(group, member string) {
	a.activeMember.DeletePartialMatch(prometheus.Labels{"group": group})
	a.activeMember.WithLabelValues(group, member).Set(1)
}

// Failover implements router.Observer.
func (a *Agent) Failover(group, from, to string, class outcome.Class) {
	a.failovers.WithLabelValues(group, from, to, string(class)).Inc()
}

// Failback implements router.Observer.
func (a *Agent) Failback(group, _, to string) {
	a.failbacks.WithLabelValues(group, to).Inc()
}
