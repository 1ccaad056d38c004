package cpbench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The goals printed next to the numbers.
const (
	goalP99         = 250 * time.Millisecond // 99 % of agents ACK an ejection within
	goalP99Agents   = 10000                  // at this many agents
	goalPerAgentKiB = 50                     // control-plane memory per connected agent
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
	Reconnects   int64     `json:"reconnects"`
	EtcdDBKiB    int64     `json:"etcd_db_kib"`
}

type settings struct {
	Agents       int    `json:"agents"`
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
}

type memory struct {
	HeapBeforeKiB    int64   `json:"heap_inuse_before_kib"`
	HeapAfterKiB     int64   `json:"heap_inuse_after_kib"`
	RSSBeforeKiB     int64   `json:"rss_before_kib"`
	RSSAfterKiB      int64   `json:"rss_after_kib"`
	PeakRSSKiB       int64   `json:"peak_rss_kib"`
	HeapPerAgentKiB  float64 `json:"heap_per_agent_kib"`
	RSSPerAgentKiB   float64 `json:"rss_per_agent_kib"`
	GoalPerAgentKiB  float64 `json:"goal_per_agent_kib"`
	measuredOnAgents int
}

const controlPlaneDesc = "hangar-controlplane serve (daemon.Run in a child process), embedded etcd with fsync, one replica"

func newReport(o Options) *report {
	return &report{
		Time: time.Now().Format(time.RFC3339), CPUs: runtime.NumCPU(), LoadAvgStart: loadAverage(),
		Settings:  settings{Agents: o.Agents, Conns: o.Conns, Batch: o.Batch, Rounds: o.Rounds, ControlPlane: controlPlaneDesc},
		GoalP99Ms: ms(goalP99), GoalAgents: goalP99Agents,
	}
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
	fmt.Fprintf(w, "%s\n%d agents on %d gRPC connections, connected in batches of %d: all had a snapshot after %.1fs, the same one after %.1fs\n\n",
		s.ControlPlane, s.Agents, s.Conns, s.Batch, r.Connect.Seconds, r.Connect.SettledSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "report → ACK\t50 % ms\t99 % ms\t100 % ms\tACKed\t")
	row := func(name string, x summary) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", name, fmtMs(x.P50Ms), fmtMs(x.P99Ms), fmtMs(x.MaxMs), x.Acked)
	}
	for i, x := range r.Eject {
		row(fmt.Sprintf("eject round %d", i+1), x)
	}
	row("eject, median round", r.EjectMedian)
	row("restore, median round", r.RestoreMed)
	tw.Flush()
	fmt.Fprintf(w, "\nejection, 99 %% of agents: %s ms   goal ≤ %.0f ms at %d agents: %s\n",
		fmtMs(r.EjectMedian.P99Ms), r.GoalP99Ms, r.GoalAgents, r.latencyVerdict())
	m := r.Memory
	fmt.Fprintf(w, "memory per agent: heap+stacks in use after GC %.1f KiB (%s → %s), RSS %.1f KiB (%s → %s, peak %s)   goal ≤ %.0f KiB: %s\n",
		m.HeapPerAgentKiB, mib(m.HeapBeforeKiB), mib(m.HeapAfterKiB), m.RSSPerAgentKiB, mib(m.RSSBeforeKiB), mib(m.RSSAfterKiB),
		mib(m.PeakRSSKiB), m.GoalPerAgentKiB, verdict(max(m.HeapPerAgentKiB, m.RSSPerAgentKiB) <= m.GoalPerAgentKiB))
	fmt.Fprintf(w, "agent reconnects (streams the control plane ended): %d; etcd database: %s\n", r.Reconnects, mib(r.EtcdDBKiB))
}

func (r *report) latencyVerdict() string {
	v := verdict(r.EjectMedian.P99Ms >= 0 && r.EjectMedian.P99Ms <= r.GoalP99Ms)
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

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// writeJSON writes the report to path, creating its directory.
func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// loadAverage returns the 1-minute load average, or -1 if it is unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var v float64
	if _, err := fmt.Sscan(strings.Fields(string(data) + " -1")[0], &v); err != nil {
		return -1
	}
	return v
}
