package peers

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/hangarmesh/hangar/e2e/bench"
	"github.com/hangarmesh/hangar/e2e/benchreport"
)

// report is the whole result of a run, as written to -json.
type report struct {
	Time         string   `json:"time"`
	CPUs         int      `json:"cpus"`
	LoadAvg      string   `json:"loadavg"` // /proc/loadavg at the end of the measurements
	LoadAvgStart float64  `json:"loadavg_1m_start"`
	Settings     settings `json:"settings"`
	Upstream     string   `json:"upstream"`
	Direct       *row     `json:"direct"`
	// Baseline is the kill and freeze runs' load sent straight to
	// server-everything with no fault: what the machine itself fails.
	Baseline    *faultReport `json:"direct_no_fault,omitempty"`
	DirectStdio *row         `json:"direct_stdio,omitempty"` // the stdio bridges' baseline
	Peers       []*row       `json:"peers"`
	Skipped     []skip       `json:"skipped,omitempty"`
	Goals       []goalCheck  `json:"goals,omitempty"`
}

type settings struct {
	Calls     int     `json:"sequential_calls"`
	Warmup    int     `json:"warmup"`
	Rounds    int     `json:"rounds"`
	Clients   int     `json:"saturated_sessions"`
	DurationS float64 `json:"saturated_s"`
	Rate      int     `json:"fault_rate_per_s"`
	Sessions  int     `json:"fault_sessions"`
	BudgetS   float64 `json:"fault_budget_s"`
	BeforeS   float64 `json:"before_fault_s"`
	AfterS    float64 `json:"after_fault_s"`
}

// row is one path's numbers.
type row struct {
	Name       string        `json:"name"`
	What       string        `json:"what"`
	Front      string        `json:"front"`
	Behind     string        `json:"behind"`
	Failover   string        `json:"failover"`
	Tool       string        `json:"tool"`
	Sequential bench.Latency `json:"sequential"`
	SeqErrors  int           `json:"sequential_errors"`
	AddedP50Ms *float64      `json:"added_p50_ms,omitempty"` // vs direct; absent for direct
	AddedP99Ms *float64      `json:"added_p99_ms,omitempty"`
	CallsPerS  float64       `json:"saturated_calls_per_s"`
	SatErrors  int64         `json:"saturated_errors"`
	RSS        *bench.Memory `json:"rss,omitempty"` // after the saturated run, the proxy's processes
	Kill       *faultReport  `json:"kill,omitempty"`
	Freeze     *faultReport  `json:"freeze,omitempty"`
	// Errors says why a measurement of this peer is missing.
	Errors     []string `json:"errors,omitempty"`
	FirstError string   `json:"first_error,omitempty"` // of the sequential and saturated runs
}

// skip is a peer that did not run, and why.
type skip struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// goalCheck is one of the goals, checked on this run's numbers.
type goalCheck struct {
	Goal string `json:"goal"`
	Met  bool   `json:"met"`
	Why  string `json:"why"`
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// fill sets the row's numbers from what t measured; added latency is
// beside direct's, when direct is not nil.
func (r *row) fill(t *target, direct *bench.Latency) {
	r.Sequential = bench.Summarize(t.samples)
	r.SeqErrors = t.seqErrors
	r.CallsPerS = math.Round(t.callsPerS())
	r.SatErrors = t.errors
	if t.firstErr != nil {
		r.FirstError = t.firstErr.Error()
	}
	if direct != nil {
		p50 := round3(r.Sequential.P50Ms - direct.P50Ms)
		p99 := round3(r.Sequential.P99Ms - direct.P99Ms)
		r.AddedP50Ms, r.AddedP99Ms = &p50, &p99
	}
}

// checkGoals compares hangar with nginx and the MCP peers (issue 12,
// goal 2): Hangar leads every MCP peer on every row, and its added p50 is
// within 2 × nginx's.
func (rep *report) checkGoals() {
	var hangar, nginx *row
	var mcp []*row
	for _, r := range rep.Peers {
		switch r.Name {
		case "hangar":
			hangar = r
		case "nginx":
			nginx = r
		default:
			mcp = append(mcp, r)
		}
	}
	if hangar == nil || hangar.AddedP50Ms == nil {
		return
	}
	if nginx != nil && nginx.AddedP50Ms != nil {
		limit := 2 * *nginx.AddedP50Ms
		rep.Goals = append(rep.Goals, goalCheck{Goal: "hangar added p50 <= 2 x nginx added p50", Met: *hangar.AddedP50Ms <= limit,
			Why: fmt.Sprintf("%.3f ms vs 2 x %.3f ms", *hangar.AddedP50Ms, *nginx.AddedP50Ms)})
	}
	for _, m := range mcp {
		var behind []string
		if m.AddedP50Ms != nil && *hangar.AddedP50Ms > *m.AddedP50Ms {
			behind = append(behind, "added p50")
		}
		if m.AddedP99Ms != nil && *hangar.AddedP99Ms > *m.AddedP99Ms {
			behind = append(behind, "added p99")
		}
		if m.CallsPerS > 0 && hangar.CallsPerS < m.CallsPerS {
			behind = append(behind, "calls/s")
		}
		if m.Kill != nil && hangar.Kill != nil && hangar.Kill.Failed > m.Kill.Failed {
			behind = append(behind, "failed on kill")
		}
		if m.Freeze != nil && hangar.Freeze != nil && hangar.Freeze.Failed > m.Freeze.Failed {
			behind = append(behind, "failed on freeze")
		}
		if m.RSS != nil && hangar.RSS != nil && hangar.RSS.RSSKiB > m.RSS.RSSKiB {
			behind = append(behind, "RSS")
		}
		why := "ahead or level on every row"
		if len(behind) > 0 {
			why = "behind on " + strings.Join(behind, ", ")
		}
		rep.Goals = append(rep.Goals, goalCheck{Goal: "hangar leads " + m.Name, Met: len(behind) == 0, Why: why})
	}
}

// markdown writes the main table.
func (rep *report) markdown(w io.Writer) {
	fmt.Fprintln(w, "| path | front / behind | p50 ms | p99 ms | added p50 ms | added p99 ms | calls/s | failed on kill | failed on freeze | RSS MiB |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	rows := append([]*row{rep.Direct, rep.DirectStdio}, rep.Peers...)
	for _, r := range rows {
		if r == nil {
			continue
		}
		direct := r.AddedP50Ms == nil
		fmt.Fprintf(w, "| %s | %s | %.3f | %.3f | %s | %s | %.0f | %s | %s | %s |\n", r.Name, r.Front+" / "+r.Behind,
			r.Sequential.P50Ms, r.Sequential.P99Ms, signed(r.AddedP50Ms), signed(r.AddedP99Ms), r.CallsPerS,
			faultCell(r.Kill, direct), faultCell(r.Freeze, direct), rssCell(r.RSS))
	}
}

func signed(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%+.3f", *v)
}

// faultCell is "failed of sent", with the failures after the fault.
func faultCell(f *faultReport, direct bool) string {
	switch {
	case direct:
		return "-"
	case f == nil:
		return "n/a"
	}
	return fmt.Sprintf("%d of %d", f.Failed, f.Sent)
}

func rssCell(m *bench.Memory) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(m.RSSKiB)/1024)
}

// print writes the whole report: header, table, notes.
func (rep *report) print(w io.Writer) {
	s := rep.Settings
	fmt.Fprintf(w, "\nhangar-peers  %s  %d CPUs; load average at the end: %s\n", rep.Time, rep.CPUs, rep.LoadAvg)
	fmt.Fprintf(w, "upstream: %s; client: MCP Go SDK, tools/call of get-sum\n", rep.Upstream)
	fmt.Fprintf(w, "sequential: %d calls per path on one session after %d warm-up, %d interleaved rounds; saturated: %d sessions for %gs per path\n",
		s.Calls, s.Warmup, s.Rounds, s.Clients, s.DurationS)
	fmt.Fprintf(w, "kill / freeze: %d calls/s on %d sessions, %gs budget per call, SIGKILL / SIGSTOP of the primary after %gs, then %gs more; a session whose call failed is opened again\n\n",
		s.Rate, s.Sessions, s.BudgetS, s.BeforeS, s.AfterS)
	rep.markdown(w)
	fmt.Fprintln(w)
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(w, "- direct, the same paced load with no fault: %d of %d failed, p99 %.0f ms (what the machine's own load costs)\n",
			b.Failed, b.Sent, b.LatencyAfter.P99Ms)
	}
	for _, r := range rep.Peers {
		fmt.Fprintf(w, "- %s: %s; failover: %s; tool %q", r.Name, r.What, r.Failover, r.Tool)
		if r.SeqErrors > 0 || r.SatErrors > 0 {
			fmt.Fprintf(w, "; errors: %d sequential, %d saturated (first: %s)", r.SeqErrors, r.SatErrors, r.FirstError)
		}
		for _, f := range []*faultReport{r.Kill, r.Freeze} {
			if f != nil {
				fmt.Fprintf(w, "; %s: %d of %d sent after it failed (by session %v), their p99 %.0f ms",
					f.Fault, f.FailedAfter, f.SentAfter, f.FailedAfterBySession, f.LatencyAfter.P99Ms)
				if f.FirstError != "" {
					fmt.Fprintf(w, " (first error: %s)", oneLine(f.FirstError))
				}
			}
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "; %s", oneLine(e))
		}
		fmt.Fprintln(w)
	}
	for _, sk := range rep.Skipped {
		fmt.Fprintf(w, "- skipped %s: %s\n", sk.Name, oneLine(sk.Reason))
	}
	if len(rep.Goals) > 0 {
		fmt.Fprintln(w)
	}
	for _, g := range rep.Goals {
		verdict := "NOT met"
		if g.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "goal %s: %s (%s)\n", g.Goal, verdict, g.Why)
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// writeJSON writes the report to path, creating its directory.
func (rep *report) writeJSON(path string) error { return benchreport.WriteJSON(path, rep) }
