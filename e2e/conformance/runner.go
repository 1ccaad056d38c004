package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hangarmesh/hangar/e2e/proc"
	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

// Options configure a run.
type Options struct {
	Bin   string   // folder with hangar-agent and everything-server
	Known string   // known-failures file
	Out   string   // folder for the suite's results and the agents' logs
	Modes []string // agent modes to run; direct always runs first
	// Parallel is how many scenarios run at once in the pair-kill mode,
	// which runs each scenario on its own to kill the primary between two.
	Parallel int
	Tooling  *thirdparty.Tooling
	Log      io.Writer // progress and the final table
}

// ModeResult is one mode's scores.
type ModeResult struct {
	Mode    string
	Results []Result
	Verdict Verdict
	Elapsed time.Duration
}

// Run runs the suite in every mode, prints the table and the differences
// from the baseline, and returns an error when a mode differs from it.
func Run(ctx context.Context, o Options) ([]ModeResult, error) {
	known, err := ParseKnown(o.Known)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, fmt.Errorf("clean %s: %w", o.Out, err)
	}
	var all []ModeResult
	var scenarios []string
	for _, mode := range append([]string{ModeDirect}, o.Modes...) {
		if mode == ModeDirect && len(all) > 0 {
			continue
		}
		fmt.Fprintf(o.Log, "== %s\n", mode)
		start := time.Now()
		results, err := runMode(ctx, o, mode, scenarios)
		if err != nil {
			return all, fmt.Errorf("mode %s: %w", mode, err)
		}
		if mode == ModeDirect {
			for _, r := range results {
				scenarios = append(scenarios, r.Scenario)
			}
		}
		all = append(all, ModeResult{Mode: mode, Results: results, Verdict: Compare(mode, results, known), Elapsed: time.Since(start)})
	}
	printTable(o.Log, all)
	return all, explain(o.Log, o.Known, all)
}

// runMode starts the processes of mode, runs the suite and ends them.
func runMode(ctx context.Context, o Options, mode string, scenarios []string) ([]Result, error) {
	dir := filepath.Join(o.Out, mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	members := map[string]int{ModeDirect: 1, ModeOne: 1, ModePair: 2, ModePairKill: 2}[mode]
	if members == 0 {
		return nil, fmt.Errorf("unknown mode %q (modes: %s)", mode, strings.Join(AllModes, ", "))
	}
	var servers []*proc.Process
	var urls []string
	defer func() {
		for _, p := range servers {
			p.Kill()
		}
	}()
	for i := range members {
		p, url, err := startServer(ctx, o.Bin, fmt.Sprintf("conformance-server-%d", i+1))
		if err != nil {
			return nil, err
		}
		servers, urls = append(servers, p), append(urls, url)
	}
	url := urls[0]
	if mode != ModeDirect {
		agent, aurl, err := startAgent(ctx, o.Bin, dir, urls)
		if err != nil {
			return nil, err
		}
		defer func() {
			_ = agent.Stop(10 * time.Second)
			_ = os.WriteFile(filepath.Join(dir, "agent.log"), []byte(agent.Output()), 0o644)
		}()
		url = aurl
	}
	results := filepath.Join(dir, "results")
	if mode != ModePairKill {
		if _, err := o.Tooling.Conformance(ctx, url, "", results); err != nil {
			return nil, err
		}
		return ReadResults(results)
	}
	half := len(scenarios) / 2
	if err := runEach(ctx, o, url, scenarios[:half], results); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "   killed the primary (pid %d) after %d of %d scenarios\n", servers[0].PID(), half, len(scenarios))
	servers[0].Kill()
	if err := runEach(ctx, o, url, scenarios[half:], results); err != nil {
		return nil, err
	}
	got, err := ReadResults(results)
	if err != nil {
		return nil, err
	}
	for _, s := range scenarios { // a scenario that wrote nothing failed
		if !slices.ContainsFunc(got, func(r Result) bool { return r.Scenario == s }) {
			got = append(got, Result{Scenario: s, Failed: 1, Failures: []string{"no results written"}})
		}
	}
	return got, nil
}

// runEach runs scenarios one by one, o.Parallel at a time (each is its own
// client session, as separate users would be), and returns when all ended.
func runEach(ctx context.Context, o Options, url string, scenarios []string, results string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Parallel, 1))
	for _, s := range scenarios {
		g.Go(func() error {
			_, err := o.Tooling.Conformance(ctx, url, s, results)
			return err
		})
	}
	return g.Wait()
}

func printTable(w io.Writer, all []ModeResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tscenarios passed\tchecks passed\tknown failures\tregressions\tstale\ttime")
	for _, m := range all {
		sp, cp, ct := 0, 0, 0
		for _, r := range m.Results {
			if r.OK() {
				sp++
			}
			cp += r.Passed
			ct += r.Passed + r.Failed
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\t%d\t%d\t%d\t%.1fs\n", m.Mode, sp, len(m.Results), cp, ct,
			len(m.Verdict.KnownFailed), len(m.Verdict.Regressions), len(m.Verdict.Stale), m.Elapsed.Seconds())
	}
	tw.Flush()
}

// explain prints what differs from the baseline and returns an error if
// anything does.
func explain(w io.Writer, knownPath string, all []ModeResult) error {
	bad := 0
	for _, m := range all {
		for _, r := range m.Verdict.Regressions {
			bad++
			fmt.Fprintf(w, "\nFAIL %s %s (not a known failure):\n    %s\n", m.Mode, r.Scenario, strings.Join(r.Failures, "\n    "))
		}
		for _, s := range m.Verdict.Stale {
			bad++
			fmt.Fprintf(w, "\nSTALE %s %s: listed in %s but passed: remove that line\n", m.Mode, s, knownPath)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d differences from the baseline %s", bad, knownPath)
	}
	fmt.Fprintf(w, "\nevery mode matches the baseline %s\n", knownPath)
	return nil
}
