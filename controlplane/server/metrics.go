package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a replica's hangar_controlplane_* metrics.
type Metrics struct {
	agents          prometheus.Gauge
	leader          prometheus.Gauge
	snapshotVersion prometheus.Gauge
	reports         *prometheus.CounterVec
	pushes          prometheus.Counter
	sentBytes       *prometheus.CounterVec
	nacks           prometheus.Counter
	slowDisconnects prometheus.Counter
	convergence     prometheus.Histogram
	decisions       prometheus.Counter
}

// NewMetrics registers the control plane's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		agents: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hangar_controlplane_agents_connected",
			Help: "Agents with an open stream to this replica."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hangar_controlplane_leader",
			Help: "1 while this replica is the leader that aggregates and decides, else 0."}),
		snapshotVersion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hangar_controlplane_snapshot_version",
			Help: "Version (etcd revision) of the latest routing snapshot this replica serves."}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hangar_controlplane_reports_received_total",
			Help: "Agent reports received, by kind (change or heartbeat)."}, []string{"kind"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "hangar_controlplane_snapshot_pushes_total",
			Help: "Snapshots (full or delta) queued to agents."}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hangar_controlplane_sent_bytes_total",
			Help: "Bytes of messages sent to agents, by kind (full snapshot, delta, assignment)."}, []string{"kind"}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "hangar_controlplane_snapshot_nacks_total",
			Help: "Snapshots agents rejected."}),
		slowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "hangar_controlplane_slow_agent_disconnects_total",
			Help: "Agents disconnected because their send queue overflowed."}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hangar_controlplane_convergence_seconds",
			Help:    "Time from a routing decision to an agent's ACK of the snapshot carrying it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		decisions: prometheus.NewCounter(prometheus.CounterOpts{Name: "hangar_controlplane_snapshots_written_total",
			Help: "Routing snapshots the leader wrote."}),
	}
	reg.MustRegister(m.agents, m.leader, m.snapshotVersion, m.reports, m.pushes, m.sentBytes, m.nacks, m.slowDisconnects, m.convergence, m.decisions)
	return m
}
