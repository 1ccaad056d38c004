package peers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/bench"
	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

// Run is hangar-peers: it parses args (see parseOptions), measures every
// peer that can run here, prints the report to stdout and writes it as
// JSON. Progress goes to stderr. Every process it starts is ended before it
// returns, also when ctx is cancelled.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "hangar-peers: "+format+"\n", args...) }
	tl, err := thirdparty.Find()
	if err != nil {
		return err
	}
	e := &env{tl: tl, dir: filepath.Join(filepath.Dir(tl.Dir), "peers"), bin: o.BinDir, nginx: findNginx()}
	if o.Verbose {
		e.echo = stderr
	}
	if e.work, err = os.MkdirTemp("", "hangar-peers"); err != nil {
		return err
	}
	defer os.RemoveAll(e.work)

	rep := &report{Time: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), LoadAvgStart: bench.LoadAverage(),
		Upstream: "@modelcontextprotocol/server-everything (Streamable HTTP; over stdio for the stdio bridges)",
		Settings: settings{Calls: o.Calls, Warmup: o.Warmup, Rounds: o.Rounds, Clients: o.Clients, DurationS: o.Duration.Seconds(),
			Rate: o.Rate, Sessions: o.Sessions, BudgetS: o.Budget.Seconds(), BeforeS: o.Before.Seconds(), AfterS: o.After.Seconds()}}
	var chosen []*peer
	for _, pe := range allPeers() {
		if !slices.Contains(o.Peers, pe.name) {
			continue
		}
		if why := pe.missing(e); why != "" {
			progress("skipping %s: %s", pe.name, why)
			rep.Skipped = append(rep.Skipped, skip{Name: pe.name, Reason: why})
			continue
		}
		chosen = append(chosen, pe)
	}
	if len(chosen) == 0 {
		return errors.New("no peer can run here (see the reasons above)")
	}
	if err := measurePaths(ctx, e, o, chosen, rep, progress); err != nil {
		return err
	}
	progress("direct: %d calls/s, no fault, for %s", o.Rate, o.Before+o.After)
	if b, err := baselineRun(ctx, e, o.load()); err == nil {
		rep.Baseline = &b
	} else if ctx.Err() == nil {
		progress("direct, no fault: %v", err)
	}
	for _, r := range rep.Peers {
		for _, fault := range []string{faultKill, faultFreeze} {
			progress("%s: %d calls/s, %s the primary after %s, %s more", r.Name, o.Rate, fault, o.Before, o.After)
			f, err := faultRun(ctx, e, peerNamed(chosen, r.Name), fault, o.load())
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				progress("%s, %s: %v", r.Name, fault, err)
				r.Errors = append(r.Errors, fmt.Sprintf("%s run: %v", fault, err))
				continue
			}
			if fault == faultKill {
				r.Kill = &f
			} else {
				r.Freeze = &f
			}
		}
	}
	rep.LoadAvg = loadAvg()
	rep.checkGoals()
	rep.print(stdout)
	if o.JSONPath != "" {
		if err := rep.writeJSON(o.JSONPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nJSON report: %s\n", o.JSONPath)
	}
	return nil
}

func peerNamed(peers []*peer, name string) *peer {
	for _, p := range peers {
		if p.name == name {
			return p
		}
	}
	return nil
}

// startUpstreams starts the primary and the backup server-everything.
func startUpstreams(e *env) (upstreams, error) {
	var up upstreams
	var err error
	if up.primary, err = e.tl.StartEverything(); err != nil {
		return up, fmt.Errorf("primary server-everything: %w", err)
	}
	if up.backup, err = e.tl.StartEverything(); err != nil {
		up.stop()
		return upstreams{}, fmt.Errorf("backup server-everything: %w", err)
	}
	return up, nil
}

// measurePaths starts the chosen peers in front of one pair of upstreams
// and measures direct and every peer that serves a first call: sequential
// latency, saturated throughput, then each peer's memory. A peer that
// cannot start or serve is skipped, with the reason in rep.
func measurePaths(ctx context.Context, e *env, o Options, chosen []*peer, rep *report, progress func(string, ...any)) error {
	progress("starting server-everything (primary, backup) and %d peers", len(chosen))
	up, err := startUpstreams(e)
	if err != nil {
		return err
	}
	defer up.stop()
	c := newClient(2*o.Clients*(len(chosen)+1) + 8)
	defer c.close()
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)

	direct := &target{name: "direct", url: up.primary.URL(), tr: streamable, tool: baseTool, abort: abort}
	if direct.seq, err = c.connect(ctx, direct.url, streamable, connectTimeout); err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	targets := []*target{direct}
	rows := map[*target]*row{direct: {Name: "direct", What: "server-everything itself", Front: streamable.String(), Behind: "-", Failover: "-", Tool: baseTool}}
	var directStdio *target
	if slices.ContainsFunc(chosen, func(p *peer) bool { return p.stdio }) {
		directStdio = &target{name: "direct-stdio", url: strings.Join(e.everythingStdio(), " "), tr: stdio, tool: baseTool, abort: abort}
		if directStdio.seq, err = c.connect(ctx, directStdio.url, stdio, connectTimeout); err != nil {
			closeAll([]*mcp.ClientSession{direct.seq})
			return fmt.Errorf("direct over stdio: %w", err)
		}
		targets = append(targets, directStdio)
		rows[directStdio] = &row{Name: "direct-stdio", What: "server-everything itself over stdio, a child per session (the stdio bridges' baseline)",
			Front: stdio.String(), Behind: "-", Failover: "-", Tool: baseTool}
	}
	nDirect := len(targets)
	var started []*running
	defer func() {
		for _, t := range targets {
			t.close()
		}
		for _, r := range started {
			r.stop()
		}
	}()
	for _, pe := range chosen {
		r, t, err := startTarget(ctx, e, c, pe, up)
		if err != nil {
			progress("skipping %s: %v", pe.name, err)
			rep.Skipped = append(rep.Skipped, skip{Name: pe.name, Reason: err.Error()})
			if r != nil {
				r.stop()
			}
			continue
		}
		t.abort = abort
		started = append(started, r)
		targets = append(targets, t)
		rows[t] = &row{Name: pe.name, What: pe.what, Front: pe.front.String(), Behind: pe.behind, Failover: pe.failover, Tool: t.tool}
	}
	if err := measure(ctx, c, o, targets, progress); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return err
	}
	base := map[bool]*bench.Latency{}
	for _, d := range targets[:nDirect] {
		rows[d].fill(d, nil)
		base[d.tr == stdio] = &rows[d].Sequential
	}
	rep.Direct = rows[direct]
	if directStdio != nil {
		rep.DirectStdio = rows[directStdio]
	}
	for i, r := range started {
		t := targets[nDirect+i]
		row := rows[t]
		row.fill(t, base[r.stdio])
		if m, err := treeMemory(r.p.PID()); err == nil {
			row.RSS = &m
		} else {
			row.Errors = append(row.Errors, err.Error())
		}
		rep.Peers = append(rep.Peers, row)
	}
	return nil
}

// startTarget starts pe and opens its sequential session; it returns the
// running peer also on error, for the caller to stop.
func startTarget(ctx context.Context, e *env, c *client, pe *peer, up upstreams) (*running, *target, error) {
	r, err := pe.start(e, up)
	if err != nil {
		return nil, nil, err
	}
	t := &target{name: pe.name, url: r.url, tr: pe.front}
	if t.seq, err = c.connectReady(ctx, r.url, pe.front); err != nil {
		return r, nil, err
	}
	if r.tool, err = findTool(ctx, t.seq, startTimeout); err != nil {
		t.close()
		return r, nil, err
	}
	t.tool = r.tool
	return r, t, nil
}

func measure(ctx context.Context, c *client, o Options, targets []*target, progress func(string, ...any)) error {
	progress("warm-up: %d calls per path", o.Warmup)
	if err := warmUp(ctx, targets, o.Warmup); err != nil {
		return err
	}
	progress("sequential: %d calls per path in %d rounds", o.Calls, o.Rounds)
	if err := sequential(ctx, targets, o.Calls, o.Rounds); err != nil {
		return err
	}
	for _, t := range targets {
		pool, err := c.connectN(ctx, t.url, t.tr, o.Clients)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.pool = pool
	}
	progress("saturated: %d sessions for %s per path", o.Clients, o.Duration)
	return saturate(ctx, targets, o.Duration)
}

// faultRun starts pe on fresh upstreams, finds its tool and runs the
// paced load with fault.
func faultRun(ctx context.Context, e *env, pe *peer, fault string, ls loadSettings) (faultReport, error) {
	var up upstreams
	if !pe.stdio {
		var err error
		if up, err = startUpstreams(e); err != nil {
			return faultReport{}, err
		}
		defer up.stop()
	}
	r, err := pe.start(e, up)
	if err != nil {
		return faultReport{}, err
	}
	defer r.stop()
	c := newClient(4)
	defer c.close()
	cs, err := c.connectReady(ctx, r.url, pe.front)
	if err != nil {
		return faultReport{}, err
	}
	r.tool, err = findTool(ctx, cs, startTimeout)
	_ = cs.Close()
	if err != nil {
		return faultReport{}, err
	}
	return runFault(ctx, loadTarget{url: r.url, tr: r.front, tool: r.tool, primary: r.primaryPIDs}, fault, ls)
}

// baselineRun sends the paced load straight to a fresh server-everything,
// with no fault: the failures the machine's own load causes.
func baselineRun(ctx context.Context, e *env, ls loadSettings) (faultReport, error) {
	ev, err := e.tl.StartEverything()
	if err != nil {
		return faultReport{}, fmt.Errorf("server-everything: %w", err)
	}
	defer ev.Kill()
	return runFault(ctx, loadTarget{url: ev.URL(), tr: streamable, tool: baseTool}, faultNone, ls)
}

// loadAvg returns the three load averages of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
