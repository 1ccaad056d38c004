package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// frontDoorWait bounds how long the agent may take to offer the group's
// tools after it started.
const frontDoorWait = 15 * time.Second

// Run is hangar-bench: it parses args (see parseOptions), starts the fleet,
// measures, prints the report to stdout and writes it as JSON. Progress
// goes to stderr. Every process it starts is ended before it returns,
// also when ctx is cancelled.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range []string{"hangar-agent", "mcp-math"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, name)); err != nil {
			return fmt.Errorf("-bin %s: %w (run make build, or point -bin at the binaries)", o.BinDir, err)
		}
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "hangar-bench: "+format+"\n", args...) }
	var echo io.Writer
	if o.Verbose {
		echo = stderr
	}

	rep := newReport(o)
	progress("starting two mcp-math upstreams, hangar-agent and a reverse proxy")
	f, err := startFleet(o, echo)
	if err != nil {
		return err
	}
	defer f.stop()
	d := newDialer(2*o.Clients + o.Workers + 8)
	defer d.close()

	targets, err := connectTargets(ctx, f, d)
	if err != nil {
		return err
	}
	if rep.Agent.AtStart, err = readMemory(f.agent.PID()); err != nil {
		closeTargets(targets)
		return err
	}
	if rep.Paced, err = measurePaths(ctx, targets, d, o, progress); err != nil {
		return err
	}
	rep.addPaths(targets)

	progress("client sessions: %d new sessions on the front door, two calls each, kept open", idleSessions)
	if rep.Sessions, err = measureSessions(ctx, f, d); err != nil {
		return fmt.Errorf("client sessions: %w", err)
	}

	progress("allocations: %d calls per path in this process (front door, reverse proxy, direct)", o.Allocs)
	if rep.Allocs, err = measureAllocs(ctx, f, o.Allocs); err != nil {
		return fmt.Errorf("allocations: %w", err)
	}

	progress("failover: %d calls/s, kill -9 %s after %s, %s more", o.Rate, primaryID, o.Before, o.After)
	fo, err := runFailover(ctx, f, d, o)
	if err != nil {
		return fmt.Errorf("failover run: %w", err)
	}
	rep.Failover = &fo
	if rep.Agent.AfterRuns, err = readMemory(f.agent.PID()); err != nil {
		return err
	}
	for _, run := range []struct {
		tool   string
		repeat bool
	}{{"add", true}, {"append", false}} {
		progress("freeze: %d calls/s of %s, SIGSTOP %s after %s, %s more (a fleet of its own)", o.Rate, run.tool, primaryID, o.Before, o.After)
		fr, err := runFreeze(ctx, o, echo, run.tool, run.repeat)
		if err != nil {
			return fmt.Errorf("freeze run (%s): %w", run.tool, err)
		}
		rep.Freeze = append(rep.Freeze, fr)
	}
	rep.LoadAvgEnd = loadAverage()

	rep.print(stdout)
	if o.JSONPath != "" {
		if err := rep.writeJSON(o.JSONPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "JSON report: %s\n", o.JSONPath)
	}
	return nil
}

// connectTargets opens the sequential session of every path and waits for
// the agent to offer the front-door tool.
func connectTargets(ctx context.Context, f *fleet, d *dialer) ([]*target, error) {
	targets := []*target{
		{path: path{name: pathDirect, url: f.directURL(), call: callAdd}},
		{path: path{name: pathReverseProxy, url: f.proxyURL(), call: callAdd}},
		{path: path{name: pathFrontDoor, url: f.agentURL(), call: callAdd}},
		{path: path{name: pathHangarCall, url: f.agentURL(), call: callHangar}},
	}
	for i, t := range targets {
		cs, err := d.connect(ctx, t.url)
		if err != nil {
			closeTargets(targets[:i])
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		t.seq = cs
	}
	for _, t := range targets {
		if t.name == pathFrontDoor {
			if err := waitForTool(ctx, t.seq, "add", frontDoorWait); err != nil {
				closeTargets(targets)
				return nil, err
			}
		}
	}
	return targets, nil
}

// measurePaths runs the sequential, saturated and steady-load
// measurements, then closes every session of targets.
func measurePaths(ctx context.Context, targets []*target, d *dialer, o Options, progress func(string, ...any)) (*pacedReport, error) {
	defer closeTargets(targets)
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	for _, t := range targets {
		t.abort = abort
	}
	paced, err := measure(ctx, targets, d, o, progress)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, cause // a hung call, or the run was interrupted
		}
		return nil, err
	}
	return paced, nil
}

func measure(ctx context.Context, targets []*target, d *dialer, o Options, progress func(string, ...any)) (*pacedReport, error) {
	progress("warm-up: %d calls per path", o.Warmup)
	if err := warmUp(ctx, targets, o.Warmup); err != nil {
		return nil, err
	}
	progress("sequential: %d calls per path in %d rounds", o.Calls, o.Rounds)
	if err := measureSequential(ctx, targets, o.Calls, o.Rounds); err != nil {
		return nil, err
	}
	for _, t := range targets {
		pool, err := d.connectN(ctx, t.url, o.Clients)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		t.pool = pool
	}
	progress("saturated: %d sessions for %s per path", o.Clients, o.Duration)
	if err := measureThroughput(ctx, targets, o.Duration); err != nil {
		return nil, err
	}
	for _, t := range targets {
		closeAll(t.pool)
		t.pool = nil
	}
	steadyPaths := targets[:3] // direct, reverse proxy, front door
	progress("steady load: %d calls/s on %d sessions for %s per path", o.Rate, o.Workers, o.Paced)
	return measurePaced(ctx, steadyPaths, d, o)
}

func closeTargets(targets []*target) {
	for _, t := range targets {
		if t.seq != nil {
			_ = t.seq.Close()
		}
		closeAll(t.pool)
		t.seq, t.pool = nil, nil
	}
}
