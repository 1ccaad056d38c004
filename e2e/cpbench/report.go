package cpbench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/hangarmesh/hangar/e2e/benchreport"
)

// The goals printed next to the numbers.
const (
	goalP99           = 250 * time.Millisecond // 99 % of agents ACK an ejection within
	goalP99Agents     = 10000                  // at this many agents
	goalPerAgentKiB   = 30                     // control-plane heap per connected agent
	goalBytesPerAgent = 1024                   // bytes sent to each agent per ejection
)

// report is the whole result of a run, as written to -json.
type report struct {
	Time         string    `json:"time"`
	CPUs         int       `json:"cpus"`
	LoadAvgStart float64   `json:"loadavg_1m_start"`
	Settings     settings  `json:"settings"`
	Connect      connect   `json:"connect"`
	Eject        []summary `json:"eject_rounds"`
	Restore      []summary `json:"restore_rounds"`
	EjectMedian  summary   `json:"eject_median_round"`
	RestoreMed   summary   `json:"restore_median_round"`
	GoalP99Ms    float64   `json:"goal_p99_ms"`
	GoalAgents   int       `json:"goal_p99_at_agents"`
	Memory       memory    `json:"memory"`
	// Replicas is the memory of each replica when there are several.
	Replicas   []replicaMemory `json:"replicas,omitempty"`
	Steady     *steadyState    `json:"steady_state,omitempty"`
	Reconnects int64           `json:"reconnects"`
	EtcdDBKiB  int64           `json:"etcd_db_kib"`
	// Etcd is what the replicas put to etcd in each phase.
	Etcd etcdPhases `json:"etcd_writes"`
}

// etcdPhases is what was put to etcd while the agents connected, during
// the rounds and while they heartbeat.
type etcdPhases struct {
	Connect *etcdWrites `json:"connect,omitempty"`
	Rounds  *etcdWrites `json:"rounds,omitempty"`
	Steady  *etcdWrites `json:"steady,omitempty"`
}

// replicaMemory is one replica's heap (and stacks) in use after GC and RSS.
type replicaMemory struct {
	Replica         string  `json:"replica,omitempty"`
	Agents          int     `json:"agents,omitempty"`
	HeapKiB         int64   `json:"heap_inuse_kib"`
	RSSKiB          int64   `json:"rss_kib"`
	HeapPerAgentKiB float64 `json:"heap_per_agent_kib,omitempty"`
}

// steadyState is the heartbeat phase: every agent reports once a second.
type steadyState struct {
	Seconds          float64      `json:"seconds"`
	EtcdWritesPerSec float64      `json:"etcd_writes_per_sec"`
	Leader           string       `json:"leader"`
	CPU              []replicaCPU `json:"cpu"`
}

type replicaCPU struct {
	Replica   string  `json:"replica"`
	Leader    bool    `json:"leader"`
	CoresUsed float64 `json:"cores_used"` // CPU seconds per second
}

type settings struct {
	Agents       int    `json:"agents"`
	Replicas     int    `json:"replicas"`
	Fleet        string `json:"fleet"`
	FleetBytes   int    `json:"fleet_bytes"`
	FleetGroups  int    `json:"fleet_groups"`
	FleetServers int    `json:"fleet_members"`
	Conns        int    `json:"conns"`
	Batch        int    `json:"batch"`
	Rounds       int    `json:"rounds"`
	ControlPlane string `json:"control_plane"`
}

type connect struct {
	Seconds        float64 `json:"seconds"`         // until every agent had a snapshot
	SettledSeconds float64 `json:"settled_seconds"` // until every agent had the last one
	Reconnects     int64   `json:"reconnects"`
}

// summary is one round: the time from the report to the ACK of 50 %, 99 %
// and 100 % of the agents.
type summary struct {
	Acked int     `json:"acked"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"p100_ms"`
	// BytesPerAgent is what the agents received during the round (and
	// its aftermath), divided by the number of agents.
	BytesPerAgent float64 `json:"bytes_per_agent"`
	Phases        phases  `json:"phases"`
}

type memory struct {
	HeapBeforeKiB    int64   `json:"heap_inuse_before_kib"`
	HeapAfterKiB     int64   `json:"heap_inuse_after_kib"`
	RSSBeforeKiB     int64   `json:"rss_before_kib"`
	RSSAfterKiB      int64   `json:"rss_after_kib"`
	PeakRSSKiB       int64   `json:"peak_rss_kib"`
	HeapPerAgentKiB  float64 `json:"heap_per_agent_kib"`
	StacksAfterKiB   int64   `json:"stacks_after_kib"` // of heap_inuse_after_kib
	GoroutinesAfter  int     `json:"goroutines_after"`
	RSSPerAgentKiB   float64 `json:"rss_per_agent_kib"`
	GoalPerAgentKiB  float64 `json:"goal_per_agent_kib"`
	measuredOnAgents int
}

func controlPlaneDesc(replicas int) string {
	if replicas == 1 {
		return "hangar-controlplane serve (daemon.Run in a child process), embedded etcd with fsync, one replica"
	}
	return fmt.Sprintf("%d hangar-controlplane serve processes (daemon.Run), the first one's embedded etcd with fsync shared", replicas)
}

func newReport(o Options, fleetBytes, groups, servers int) *report {
	return &report{
		Time: time.Now().Format(time.RFC3339), CPUs: runtime.NumCPU(), LoadAvgStart: loadAverage(),
		Settings: settings{Agents: o.Agents, Replicas: o.Replicas, Fleet: o.Fleet, FleetBytes: fleetBytes, FleetGroups: groups,
			FleetServers: servers, Conns: o.Conns, Batch: o.Batch, Rounds: o.Rounds, ControlPlane: controlPlaneDesc(o.Replicas)},
		GoalP99Ms: ms(goalP99), GoalAgents: goalP99Agents,
	}
}

// measureMemory reads every replica's memory now that the agents are
// connected: the first replica's (or, with several, their sums) per agent.
func (r *report) measureMemory(ctx context.Context, cps []*controlPlane, before []replicaMemory) error {
	m := &r.Memory
	for i, cp := range cps {
		heap, rssKiB, err := cp.memory(ctx)
		if err != nil {
			return err
		}
		agents := r.Settings.Agents / len(cps)
		if i < r.Settings.Agents%len(cps) {
			agents++
		}
		m.HeapBeforeKiB += before[i].HeapKiB
		m.RSSBeforeKiB += before[i].RSSKiB
		m.HeapAfterKiB += heap
		m.StacksAfterKiB += cp.stacks >> 10
		m.GoroutinesAfter += cp.goroutines
		m.RSSAfterKiB += rssKiB
		_, peak, _ := rss(cp.p.PID())
		m.PeakRSSKiB = max(m.PeakRSSKiB, peak)
		if len(cps) > 1 {
			r.Replicas = append(r.Replicas, replicaMemory{Replica: cp.name, Agents: agents, HeapKiB: heap, RSSKiB: rssKiB,
				HeapPerAgentKiB: float64(heap-before[i].HeapKiB) / float64(agents)})
		}
	}
	m.perAgent(r.Settings.Agents)
	return nil
}

func (m *memory) perAgent(n int) {
	m.measuredOnAgents = n
	m.HeapPerAgentKiB = float64(m.HeapAfterKiB-m.HeapBeforeKiB) / float64(n)
	m.RSSPerAgentKiB = float64(m.RSSAfterKiB-m.RSSBeforeKiB) / float64(n)
	m.GoalPerAgentKiB = goalPerAgentKiB
}

func (r *report) finish(reconnects, dbKiB int64) {
	r.Reconnects, r.EtcdDBKiB = reconnects, dbKiB
	r.EjectMedian, r.RestoreMed = median(r.Eject), median(r.Restore)
}

// summarize returns the round's summary over n agents; samples is sorted
// in place. An agent missing from samples counts as never: the
// percentiles it would fall in are +Inf (reported as -1).
func summarize(samples []time.Duration, n int) summary {
	slices.Sort(samples)
	at := func(p float64) float64 {
		rank := int(p/100*float64(n)+0.999999) - 1
		rank = max(0, min(rank, n-1))
		if rank >= len(samples) {
			return -1
		}
		return ms(samples[rank])
	}
	return summary{Acked: len(samples), P50Ms: at(50), P99Ms: at(99), MaxMs: at(100)}
}

// median returns the round with the median 99 % time.
func median(rounds []summary) summary {
	if len(rounds) == 0 {
		return summary{}
	}
	s := slices.Clone(rounds)
	slices.SortFunc(s, func(a, b summary) int {
		return cmpMs(a.P99Ms, b.P99Ms)
	})
	return s[(len(s)-1)/2]
}

// cmpMs orders times with -1 (never) last.
func cmpMs(a, b float64) int {
	switch {
	case a == b:
		return 0
	case a < 0:
		return 1
	case b < 0:
		return -1
	case a < b:
		return -1
	}
	return 1
}

func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nhangar-cpbench  %s  %d CPUs, 1-min load average %.2f before the run\n", r.Time, r.CPUs, r.LoadAvgStart)
	s := r.Settings
	fmt.Fprintf(w, "%s\nfleet file %q: %.1f KiB, %d groups, %d members; every agent serves my-mcp-group and up to 2 other groups\n",
		s.ControlPlane, s.Fleet, float64(s.FleetBytes)/1024, s.FleetGroups, s.FleetServers)
	fmt.Fprintf(w, "%d agents on %d gRPC connections per replica, connected in batches of %d: all had a snapshot after %.1fs, the same one after %.1fs\n\n",
		s.Agents, s.Conns, s.Batch, r.Connect.Seconds, r.Connect.SettledSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "report → ACK\t50 % ms\t99 % ms\t100 % ms\tACKed\tbytes/agent\tdecided ms\t1st rx ms\t99 % rx ms\t")
	row := func(name string, x summary) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t\n", name, fmtMs(x.P50Ms), fmtMs(x.P99Ms), fmtMs(x.MaxMs), x.Acked, x.BytesPerAgent,
			x.Phases.DecidedMs, x.Phases.FirstRecvMs, x.Phases.P99RecvMs)
	}
	for i, x := range r.Eject {
		row(fmt.Sprintf("eject round %d", i+1), x)
	}
	for i, x := range r.Restore {
		row(fmt.Sprintf("restore round %d", i+1), x)
	}
	row("eject, median round", r.EjectMedian)
	row("restore, median round", r.RestoreMed)
	tw.Flush()
	fmt.Fprintf(w, "\nejection, 99 %% of agents: %s ms; restoration: %s ms   goal ≤ %.0f ms at %d agents: %s\n",
		fmtMs(r.EjectMedian.P99Ms), fmtMs(r.RestoreMed.P99Ms), r.GoalP99Ms, r.GoalAgents, r.latencyVerdict())
	fmt.Fprintf(w, "bytes received per agent per ejection: %.0f   goal ≤ %d: %s\n",
		r.EjectMedian.BytesPerAgent, goalBytesPerAgent, verdict(r.EjectMedian.BytesPerAgent <= goalBytesPerAgent))
	m := r.Memory
	fmt.Fprintf(w, "memory per agent: heap+stacks in use after GC %.1f KiB (%s → %s), RSS %.1f KiB (%s → %s, peak %s)   goal ≤ %.0f KiB: %s\n",
		m.HeapPerAgentKiB, mib(m.HeapBeforeKiB), mib(m.HeapAfterKiB), m.RSSPerAgentKiB, mib(m.RSSBeforeKiB), mib(m.RSSAfterKiB),
		mib(m.PeakRSSKiB), m.GoalPerAgentKiB, verdict(m.HeapPerAgentKiB <= m.GoalPerAgentKiB))
	fmt.Fprintf(w, "  of which goroutine stacks %s (%d goroutines)\n", mib(m.StacksAfterKiB), m.GoroutinesAfter)
	for _, x := range r.Replicas {
		fmt.Fprintf(w, "  %s: %d agents, heap+stacks %s (%.1f KiB per agent), RSS %s\n", x.Replica, x.Agents, mib(x.HeapKiB), x.HeapPerAgentKiB, mib(x.RSSKiB))
	}
	if st := r.Steady; st != nil {
		fmt.Fprintf(w, "steady state (%d agents heartbeat once a second, %.0fs): etcd writes %.1f/s; CPU", s.Agents, st.Seconds, st.EtcdWritesPerSec)
		for _, c := range st.CPU {
			role := "follower"
			if c.Leader {
				role = "leader"
			}
			fmt.Fprintf(w, " %s (%s) %.0f %% of a core;", c.Replica, role, 100*c.CoresUsed)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "etcd puts while connecting: %s\n", r.Etcd.Connect)
	fmt.Fprintf(w, "etcd puts during the rounds: %s\n", r.Etcd.Rounds)
	if r.Etcd.Steady != nil {
		fmt.Fprintf(w, "etcd puts in steady state: %s\n", r.Etcd.Steady)
	}
	fmt.Fprintf(w, "agent reconnects (streams the control plane ended): %d; etcd database: %s\n", r.Reconnects, mib(r.EtcdDBKiB))
}

func (r *report) latencyVerdict() string {
	ok := func(x summary) bool { return x.P99Ms >= 0 && x.P99Ms <= r.GoalP99Ms }
	v := verdict(ok(r.EjectMedian) && ok(r.RestoreMed))
	if r.Settings.Agents < r.GoalAgents {
		v += fmt.Sprintf(" (at %d agents; run -agents %d for the goal's scale)", r.Settings.Agents, r.GoalAgents)
	}
	return v
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func fmtMs(v float64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f", v)
}

func mib(kib int64) string { return benchreport.MiB(kib) }

// writeJSON writes the report to path, creating its directory.
func (r *report) writeJSON(path string) error { return benchreport.WriteJSON(path, r) }

// loadAverage returns the 1-minute load average, or -1 if it is unknown.
func loadAverage() float64 { return benchreport.LoadAverage() }
