package bench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/hangarmesh/hangar/e2e/benchreport"
)

// Goals, from the project's performance issues.
const (
	// ratioGoal is the most the agent's front door may add to a call, as a
	// multiple of what a plain reverse proxy adds.
	ratioGoal = 1.0
	// hangarCallGoal is the most hangar_call may add, as a multiple of
	// what the front door adds.
	hangarCallGoal = 1.5
)

// report is the whole result of a run, as written to -json.
type report struct {
	Time         string          `json:"time"`
	CPUs         int             `json:"cpus"`
	LoadAvgStart float64         `json:"loadavg_1m_start"`
	LoadAvgEnd   float64         `json:"loadavg_1m_end"`
	Settings     settings        `json:"settings"`
	Paths        []pathReport    `json:"paths"`
	FrontDoor    ratioReport     `json:"front_door_vs_reverse_proxy"`
	FrontDoorP99 ratioReport     `json:"front_door_vs_reverse_proxy_added_p99"`
	FrontDoorSat ratioReport     `json:"front_door_vs_reverse_proxy_calls_per_s"`
	HangarCall   ratioReport     `json:"hangar_call_vs_reverse_proxy"`
	HangarCallFD ratioReport     `json:"hangar_call_vs_front_door"`
	Paced        *pacedReport    `json:"steady_load,omitempty"`
	Allocs       *allocReport    `json:"allocations,omitempty"`
	Failover     *failoverReport `json:"failover,omitempty"`
	Sessions     *sessionReport  `json:"client_sessions,omitempty"`
	Freeze       []freezeReport  `json:"freeze,omitempty"`
	Agent        agentMemory     `json:"agent_memory"`
}

type settings struct {
	Calls     int     `json:"calls"`
	Warmup    int     `json:"warmup"`
	Rounds    int     `json:"rounds"`
	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
}

type pathReport struct {
	Name       string     `json:"name"`
	Sequential latency    `json:"sequential"`
	SeqErrors  int        `json:"sequential_errors"`
	AddedP50Ms *float64   `json:"added_p50_ms,omitempty"` // p50 − direct p50; absent for direct
	AddedP99Ms *float64   `json:"added_p99_ms,omitempty"` // p99 − direct p99; absent for direct
	Throughput throughput `json:"throughput"`
	FirstError string     `json:"first_error,omitempty"`
}

// ratioReport compares what two proxies add; Value is nil when the
// yardstick added nothing measurable.
type ratioReport struct {
	Value   *float64 `json:"value"`
	GoalMax float64  `json:"goal_max,omitempty"`
	GoalMin float64  `json:"goal_min,omitempty"`
}

type agentMemory struct {
	AtStart   memory `json:"at_start"`
	AfterRuns memory `json:"after_runs"`
}

func newReport(o Options) *report {
	return &report{
		Time:         time.Now().Format(time.RFC3339),
		CPUs:         runtime.NumCPU(),
		LoadAvgStart: loadAverage(),
		Settings:     settings{Calls: o.Calls, Warmup: o.Warmup, Rounds: o.Rounds, Clients: o.Clients, DurationS: o.Duration.Seconds()},
	}
}

// addPaths fills the per-path rows and the ratios from what targets measured.
func (r *report) addPaths(targets []*target) {
	p50, p99, cps := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, t := range targets {
		pr := pathReport{Name: t.name, Sequential: summarize(t.samples), SeqErrors: t.seqErrors, Throughput: t.tput}
		if t.firstErr != nil {
			pr.FirstError = t.firstErr.Error()
		}
		p50[t.name], p99[t.name], cps[t.name] = pr.Sequential.P50Ms, pr.Sequential.P99Ms, pr.Throughput.CallsPerS
		r.Paths = append(r.Paths, pr)
	}
	for i := range r.Paths {
		if name := r.Paths[i].Name; name != pathDirect {
			added50 := math.Round((p50[name]-p50[pathDirect])*1000) / 1000
			added99 := math.Round((p99[name]-p99[pathDirect])*1000) / 1000
			r.Paths[i].AddedP50Ms, r.Paths[i].AddedP99Ms = &added50, &added99
		}
	}
	added := func(m map[string]float64, path string) float64 { return m[path] - m[pathDirect] }
	r.FrontDoor = ratioReport{Value: ratio(added(p50, pathFrontDoor), added(p50, pathReverseProxy)), GoalMax: ratioGoal}
	r.FrontDoorP99 = ratioReport{Value: ratio(added(p99, pathFrontDoor), added(p99, pathReverseProxy))}
	r.FrontDoorSat = ratioReport{Value: ratio(cps[pathFrontDoor], cps[pathReverseProxy]), GoalMin: 1}
	r.HangarCall = ratioReport{Value: ratio(added(p50, pathHangarCall), added(p50, pathReverseProxy))}
	r.HangarCallFD = ratioReport{Value: ratio(added(p50, pathHangarCall), added(p50, pathFrontDoor)), GoalMax: hangarCallGoal}
}

// print writes the report as a compact table.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nhangar-bench  %s  %d CPUs, 1-min load average %.2f before the run", r.Time, r.CPUs, r.LoadAvgStart)
	if r.LoadAvgStart >= float64(r.CPUs)/2 {
		fmt.Fprint(w, " (other work is running: trust the ratios more than the absolute numbers)")
	}
	s := r.Settings
	fmt.Fprintf(w, "\ntools/call add, MCP Go SDK client, stateful Streamable HTTP\n"+
		"sequential: %d calls per path on one session after %d warm-up, %d interleaved rounds; saturated: %d sessions for %gs\n\n",
		s.Calls, s.Warmup, s.Rounds, s.Clients, s.DurationS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tp50 ms\tp99 ms\tmean ms\tadded p50 ms\tadded p99 ms\tp50 / direct\tcalls/s\terrors (seq/sat)\t")
	direct := r.Paths[0].Sequential.P50Ms
	for _, p := range r.Paths {
		added50, added99, rel := "-", "-", "-"
		if p.AddedP50Ms != nil {
			added50, added99 = fmt.Sprintf("%+.3f", *p.AddedP50Ms), fmt.Sprintf("%+.3f", *p.AddedP99Ms)
			rel = fmtRatio(ratio(p.Sequential.P50Ms, direct))
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%.0f\t%d/%d\t\n", p.Name, p.Sequential.P50Ms, p.Sequential.P99Ms,
			p.Sequential.MeanMs, added50, added99, rel, p.Throughput.CallsPerS, p.SeqErrors, p.Throughput.Errors)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nadded p50, front_door / reverse_proxy:   %s   goal <= %.2f: %s\n", fmtRatio(r.FrontDoor.Value), ratioGoal, verdictMax(r.FrontDoor.Value, ratioGoal))
	fmt.Fprintf(w, "added p99, front_door / reverse_proxy:   %s   (no goal)\n", fmtRatio(r.FrontDoorP99.Value))
	fmt.Fprintf(w, "saturated calls/s, front_door / reverse_proxy: %s   goal >= 1.00: %s\n", fmtRatio(r.FrontDoorSat.Value), verdictMin(r.FrontDoorSat.Value, 1))
	fmt.Fprintf(w, "added p50, hangar_call / front_door:    %s   goal <= %.2f: %s\n", fmtRatio(r.HangarCallFD.Value), hangarCallGoal, verdictMax(r.HangarCallFD.Value, hangarCallGoal))
	fmt.Fprintf(w, "added p50, hangar_call / reverse_proxy: %s   (no goal)\n", fmtRatio(r.HangarCall.Value))
	for _, p := range r.Paths {
		if p.FirstError != "" {
			fmt.Fprintf(w, "first error on %s: %s\n", p.Name, p.FirstError)
		}
	}
	if r.Paced != nil {
		r.Paced.print(w)
	}
	if r.Allocs != nil {
		r.Allocs.print(w)
	}
	if r.Sessions != nil {
		r.Sessions.print(w)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "\nfailover: %d calls/s of add through the front door on %d sessions; kill -9 %s after %gs, then %gs more\n",
			f.RatePerS, f.Workers, primaryID, f.BeforeS, f.AfterS)
		fmt.Fprintf(w, "  sent %d (%.1f/s), failed %d (goal %d); after the kill: sent %d, failed %d\n",
			f.Sent, f.AchievedPerS, f.Failed, f.FailedGoal, f.SentAfterKill, f.FailedAfterKill)
		fmt.Fprintf(w, "  served before the kill: %s %d, %s %d; after: %s %d, %s %d\n",
			primaryID, f.ServedBeforeKill[primaryID], backupID, f.ServedBeforeKill[backupID],
			primaryID, f.ServedAfterKill[primaryID], backupID, f.ServedAfterKill[backupID])
		l := f.LatencyAfterKill
		fmt.Fprintf(w, "  latency of calls sent after the kill: p50 %.3f ms, p99 %.3f ms, max %.1f ms\n", l.P50Ms, l.P99Ms, l.MaxMs)
		if f.FirstError != "" {
			fmt.Fprintf(w, "  first error: %s\n", f.FirstError)
		}
	}
	for i := range r.Freeze {
		printFreeze(w, &r.Freeze[i])
	}
	fmt.Fprintf(w, "\nagent RSS: %s after start, %s after the runs (peak %s)\n",
		mib(r.Agent.AtStart.RSSKiB), mib(r.Agent.AfterRuns.RSSKiB), mib(r.Agent.AfterRuns.PeakKiB))
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "n/a (reverse proxy added nothing measurable)"
	}
	return fmt.Sprintf("%.2f", *v)
}

func verdictMax(v *float64, goal float64) string {
	switch {
	case v == nil:
		return "unknown"
	case *v <= goal:
		return "met"
	default:
		return "NOT met"
	}
}

func verdictMin(v *float64, goal float64) string {
	switch {
	case v == nil:
		return "unknown"
	case *v >= goal:
		return "met"
	default:
		return "NOT met"
	}
}

func mib(kib int64) string { return benchreport.MiB(kib) }

// writeJSON writes the report to path, creating its directory.
func (r *report) writeJSON(path string) error { return benchreport.WriteJSON(path, r) }
