package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// How long the demo lets each part run, and how long it waits for each
// thing it expects before it gives up and says what did not happen.
const (
	steadyFor         = 4 * time.Second  // traffic before the kill
	afterFailbackFor  = 3 * time.Second  // traffic after the failback
	readyTimeout      = 20 * time.Second // agents connected, snapshot applied, members ready
	failoverTimeout   = 15 * time.Second // agent A fails over and ejects the primary
	decisionTimeout   = 20 * time.Second // the control plane takes the primary out of rotation
	failbackTimeout   = 45 * time.Second // both agents served by the primary again
	pollEvery         = 50 * time.Millisecond
	defaultRateA      = 20
	defaultRateB      = 2
	maxRate           = 200
	defaultWorkDir    = ".demo"
	defaultBinDir     = "bin"
	healthIntervalSec = 1                      // so a dead member is noticed in seconds, not 30
	minDownFor        = 5 * time.Second        // the primary stays dead at least this long
	afterDecisionMin  = 3                      // B calls served after the decision before the restart
	settleFor         = 500 * time.Millisecond // the snapshot stays the same before the traffic starts
)

// binaries are the programs the demo runs, all built by make build.
var binaries = []string{"hangar-controlplane", "hangar-agent", "mcp-math", "hangarctl"}

// options are the command line flags.
type options struct {
	bin, dir     string
	rateA, rateB int
	verbose      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hangar-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", defaultBinDir, "directory holding the hangar-controlplane, hangar-agent, mcp-math and hangarctl binaries (make build)")
	fs.StringVar(&o.dir, "dir", defaultWorkDir, "work directory for the fleet file, etcd's data, the agents' state and every log")
	fs.IntVar(&o.rateA, "rate", defaultRateA, "calls per second sent through agent A")
	fs.IntVar(&o.rateB, "rate-b", defaultRateB, "calls per second sent through agent B")
	fs.BoolVar(&o.verbose, "v", false, "show every log line of every process, not only the failover events")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q: hangar-demo takes only flags (see -h)", fs.Arg(0))
	}
	for _, r := range []struct {
		flag string
		rate int
	}{{"-rate", o.rateA}, {"-rate-b", o.rateB}} {
		if r.rate < 1 || r.rate > maxRate {
			return options{}, fmt.Errorf("%s %d: want 1 to %d calls per second", r.flag, r.rate, maxRate)
		}
	}
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(o.bin, name)); err != nil {
			return options{}, fmt.Errorf("%s not found in -bin %q: build it with 'make build' (or run 'make demo')", name, o.bin)
		}
	}
	return o, nil
}

// Run is the hangar-demo command: it parses args, runs the demo's seven
// steps, stops every process it started (also when ctx ends, e.g. on
// Ctrl-C) and returns an error if a call failed, failover or failback did
// not happen, or agent B sent a call to the primary while the control
// plane's snapshot excluded it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	d := &demo{opts: opts, out: &console{w: stdout}, began: time.Now()}
	err = d.run(ctx)
	d.stop()
	switch {
	case ctx.Err() != nil:
		d.out.say("interrupted: every process the demo started is stopped")
		return errInterrupted
	case err != nil:
		first, _, _ := strings.Cut(err.Error(), "\n")
		d.banner("FAIL", first)
		d.out.say("every process's full log: %s", filepath.Join(d.opts.dir, "*.log"))
		return err
	}
	return nil
}

// demo is one run of the demo: the processes it started, the two agents'
// client sessions and traffic, and what it observed.
type demo struct {
	opts  options
	out   *console
	began time.Time
	start time.Time // t=0 of the printed lines: when the traffic started

	primary, backup *upstream
	cp              *controlPlane
	agents          []*agent // A and B
	config          string   // the fleet file's path

	stopTraffic context.CancelFunc
	trafficWG   sync.WaitGroup

	// upstreamCounts are the add calls each upstream says it served, by
	// phase: the upstreams' own view, to compare with the clients'.
	upstreamCounts [numPhases]map[string]int

	// What step 5 and 6 observed, for the summary.
	ejectedAt    time.Time // agent A took the primary out of its rotation
	excludedIn   uint64    // the snapshot that took the primary out of global rotation
	excludedAt   time.Time // agent B applied it
	readmittedIn uint64    // the snapshot that put the primary back
	readmittedAt time.Time // agent B applied it

	stopped   bool
	stoppedAt time.Time // when the traffic ended
}

func (d *demo) run(ctx context.Context) error {
	for i := range d.upstreamCounts {
		d.upstreamCounts[i] = map[string]int{}
	}
	for _, step := range []func(context.Context) error{
		d.startUpstreams, d.startControlPlane, d.startAgents, d.startTraffic,
		d.killPrimary, d.restartPrimary, d.summarize,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// agentA and agentB are the demo's two agents: A carries the heavy
// traffic and discovers the failure, B follows the control plane.
func (d *demo) agentA() *agent { return d.agents[0] }
func (d *demo) agentB() *agent { return d.agents[1] }

// elapsed is the time since the traffic started, for messages.
func (d *demo) elapsed() string { return d.at(time.Now()) }

// at renders t relative to the start of the traffic.
func (d *demo) at(t time.Time) string {
	return fmt.Sprintf("t=%.3fs", t.Sub(d.start).Seconds())
}

// waitUntil polls cond until it holds, ctx ends or timeout passes; the
// error then says what did not happen and cond's last error.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s did not happen within %s; %w", what, timeout, err)
			}
			return fmt.Errorf("%s did not happen within %s", what, timeout)
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errInterrupted
	case <-t.C:
		return nil
	}
}
