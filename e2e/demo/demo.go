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

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// How long the demo lets each part run, and how long it waits for each
// thing it expects before it gives up and says what did not happen.
const (
	steadyFor         = 4 * time.Second  // traffic before the kill
	afterFailbackFor  = 3 * time.Second  // traffic after the failback
	readyTimeout      = 15 * time.Second // first health checks pass
	failoverTimeout   = 15 * time.Second // calls served by the backup
	degradedTimeout   = 20 * time.Second // health checks mark the primary degraded
	failbackTimeout   = 45 * time.Second // calls served by the primary again
	statusTimeout     = 10 * time.Second // hangar_details shows the expected group
	pollEvery         = 100 * time.Millisecond
	defaultRate       = 20
	maxRate           = 200
	defaultWorkDir    = ".demo"
	defaultBinDir     = "bin"
	agentLogFile      = "agent.log"
	healthIntervalSec = 1               // so the primary is marked degraded before its first re-test
	minDownFor        = 5 * time.Second // the primary stays dead at least this long
)

// options are the command line flags.
type options struct {
	bin, dir string
	rate     int
	verbose  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hangar-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", defaultBinDir, "directory holding the hangar-agent and mcp-math binaries (make build)")
	fs.StringVar(&o.dir, "dir", defaultWorkDir, "work directory for the fleet file and the agent's full log")
	fs.IntVar(&o.rate, "rate", defaultRate, "calls per second sent through the agent")
	fs.BoolVar(&o.verbose, "v", false, "show every agent log line, not only the failover events")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q: hangar-demo takes only flags (see -h)", fs.Arg(0))
	}
	if o.rate < 1 || o.rate > maxRate {
		return options{}, fmt.Errorf("-rate %d: want 1 to %d calls per second", o.rate, maxRate)
	}
	for _, name := range []string{"hangar-agent", "mcp-math"} {
		if _, err := os.Stat(filepath.Join(o.bin, name)); err != nil {
			return options{}, fmt.Errorf("%s not found in -bin %q: build it with 'make build' (or run 'make demo')", name, o.bin)
		}
	}
	return o, nil
}

// Run is the hangar-demo command: it parses args, runs the demo's six
// steps, stops every process it started (also when ctx ends, e.g. on
// Ctrl-C) and returns an error if a call failed or failover or failback did
// not happen.
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
		if d.agent != nil {
			d.out.say("the agent's full log: %s", filepath.Join(d.opts.dir, agentLogFile))
		}
		return err
	}
	return nil
}

// demo is one run of the demo: the processes it started, its client
// session and its traffic.
type demo struct {
	opts  options
	out   *console
	began time.Time

	primary, backup *upstream
	agent           *agent
	cs              *mcp.ClientSession

	traffic     *traffic
	stopTraffic context.CancelFunc
	trafficWG   sync.WaitGroup

	// upstreamCounts are the add calls each upstream says it served, by
	// phase: the upstreams' own view, to compare with the client's.
	upstreamCounts [numPhases]map[string]int
	stopped        bool
}

func (d *demo) run(ctx context.Context) error {
	for i := range d.upstreamCounts {
		d.upstreamCounts[i] = map[string]int{}
	}
	for _, step := range []func(context.Context) error{
		d.startUpstreams, d.startAgent, d.startTraffic, d.killPrimary, d.restartPrimary, d.summarize,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) startUpstreams(ctx context.Context) error {
	d.out.step(1, "Start two mcp-math upstreams",
		"mcp-math is a small MCP server with arithmetic tools (add, subtract, ...). Two copies",
		"play the primary (my-mcp) and the backup (my-mcp-backup), on free loopback ports.")
	var err error
	if d.primary, err = startUpstream(ctx, d.opts.bin, primaryName, ""); err != nil {
		return fmt.Errorf("start the primary: %w", err)
	}
	if d.backup, err = startUpstream(ctx, d.opts.bin, backupName, ""); err != nil {
		return fmt.Errorf("start the backup: %w", err)
	}
	for _, u := range []*upstream{d.primary, d.backup} {
		d.out.say("%-14s serving MCP at %s (pid %d)", u.name, u.url(), u.proc.PID())
	}
	return nil
}

func (d *demo) startAgent(ctx context.Context) error {
	d.out.step(2, "Start hangar-agent with the failover recipe",
		"The agent reads MCP Hangar's configuration file unchanged. Group my-mcp-group sends each",
		"call to the healthy member with the best priority (my-mcp) and fails over to the next.")
	path, text, err := writeConfig(d.opts.dir, d.primary.url(), d.backup.url())
	if err != nil {
		return err
	}
	d.out.say("%s:", path)
	d.out.block(text)
	filter := &logFilter{out: d.out, all: d.opts.verbose}
	if d.agent, err = startAgent(d.opts.bin, path, filter); err != nil {
		return fmt.Errorf("start hangar-agent: %w", err)
	}
	d.out.say("hangar-agent serving MCP at %s (pid %d)", d.agent.url(), d.agent.proc.PID())
	if d.cs, err = connect(ctx, d.agent.url()); err != nil {
		return err
	}
	err = d.waitStatus(ctx, readyTimeout, "both members ready after the agent's first health checks",
		func(gs groupStatus) bool {
			p, _ := gs.member(primaryName)
			b, _ := gs.member(backupName)
			return p == "ready" && b == "ready"
		})
	if err != nil {
		return err
	}
	dash, err := dashboard(ctx, d.cs)
	if err != nil {
		return err
	}
	d.out.say("the agent's dashboard (hangar_status):")
	d.out.block(dash)
	return nil
}

func (d *demo) startTraffic(ctx context.Context) error {
	d.out.step(3, "Send steady traffic through the agent",
		fmt.Sprintf("A client calls add(n, 1) on %s through the agent's hangar_call tool, %d calls a second.", groupName, d.opts.rate),
		"Once a second: calls sent, answered (ok), failed, and which member served them (all so far).")
	d.traffic = newTraffic(d.cs, d.opts.rate, d.out)
	tctx, cancel := context.WithCancel(ctx)
	d.stopTraffic = cancel
	d.trafficWG.Add(2)
	go func() { defer d.trafficWG.Done(); d.traffic.run(tctx, ctx) }()
	go func() { defer d.trafficWG.Done(); d.traffic.report(tctx) }()
	if err := sleep(ctx, steadyFor); err != nil {
		return err
	}
	if d.traffic.served(beforeKill, primaryName) == 0 {
		return fmt.Errorf("no call was served by %s in the first %s: the group should prefer its priority 1 member", primaryName, steadyFor)
	}
	return nil
}

func (d *demo) killPrimary(ctx context.Context) error {
	d.out.step(4, "Kill -9 the primary",
		"As if its host died. A call that finds my-mcp gone is retried on my-mcp-backup inside the",
		"same call; the agent takes my-mcp out of rotation and its health checks mark it degraded.")
	err := d.traffic.between(primaryDown, func() error {
		if err := d.countUpstreams(ctx, beforeKill, d.primary, d.backup); err != nil {
			return err
		}
		d.primary.proc.Kill()
		return nil
	})
	if err != nil {
		return err
	}
	killedAt := time.Now()
	d.out.say("!! killed %s (pid %d) with SIGKILL at %s", primaryName, d.primary.proc.PID(), d.traffic.elapsed())
	if err := waitUntil(ctx, failoverTimeout, "failover (calls served by "+backupName+" after the kill)", func() (bool, error) {
		return d.traffic.served(primaryDown, backupName) > 0, nil
	}); err != nil {
		return err
	}
	if err := d.agent.waitLog(ctx, `msg=member_removed_from_rotation .*member=`+primaryName+`( |$)`, failoverTimeout,
		"my-mcp taken out of rotation"); err != nil {
		return err
	}
	if err := d.agent.waitLog(ctx, `msg=mcp_server_degraded .*mcp_server=`+primaryName+`( |$)`, degradedTimeout,
		"my-mcp marked degraded by the health checks"); err != nil {
		return err
	}
	err = d.waitStatus(ctx, statusTimeout, "group status: active member my-mcp-backup, my-mcp out of rotation",
		func(gs groupStatus) bool {
			_, in := gs.member(primaryName)
			return gs.ActiveMember == backupName && !in
		})
	if err != nil {
		return err
	}
	if err := d.printStatus(ctx); err != nil {
		return err
	}
	return sleep(ctx, time.Until(killedAt.Add(minDownFor)))
}

func (d *demo) restartPrimary(ctx context.Context) error {
	d.out.step(5, "Restart the primary on its old address",
		"The agent's health checks see my-mcp answer again; a trial call puts it back in rotation",
		"and the group fails back to its priority 1 member.")
	err := d.traffic.between(afterRestart, func() error {
		return d.countUpstreams(ctx, primaryDown, nil, d.backup)
	})
	if err != nil {
		return err
	}
	addr := d.primary.addr
	if d.primary, err = startUpstream(ctx, d.opts.bin, primaryName, addr); err != nil {
		return fmt.Errorf("restart the primary on %s: %w", addr, err)
	}
	d.out.say("!! restarted %s at %s (pid %d) at %s", primaryName, d.primary.url(), d.primary.proc.PID(), d.traffic.elapsed())
	if err := d.agent.waitLog(ctx, `msg=failback .*to=`+primaryName+`( |$)`, failbackTimeout,
		"failback to my-mcp"); err != nil {
		return err
	}
	if err := waitUntil(ctx, failbackTimeout, "failback (calls served by "+primaryName+" after the restart)", func() (bool, error) {
		return d.traffic.served(afterRestart, primaryName) > 0, nil
	}); err != nil {
		return err
	}
	err = d.waitStatus(ctx, statusTimeout, "group status: active member my-mcp, both members in rotation",
		func(gs groupStatus) bool {
			_, p := gs.member(primaryName)
			_, b := gs.member(backupName)
			return gs.ActiveMember == primaryName && p && b
		})
	if err != nil {
		return err
	}
	if err := d.printStatus(ctx); err != nil {
		return err
	}
	return sleep(ctx, afterFailbackFor)
}

// printStatus prints the group's status from hangar_details.
func (d *demo) printStatus(ctx context.Context) error {
	gs, err := details(ctx, d.cs)
	if err != nil {
		return err
	}
	d.out.say("the group's status (hangar_details):")
	d.out.block(gs.String())
	return nil
}

// waitStatus polls hangar_details until ok holds.
func (d *demo) waitStatus(ctx context.Context, timeout time.Duration, what string, ok func(groupStatus) bool) error {
	return waitUntil(ctx, timeout, what, func() (bool, error) {
		gs, err := details(ctx, d.cs)
		if err != nil {
			return false, err
		}
		if ok(gs) {
			return true, nil
		}
		return false, fmt.Errorf("last status: %s", gs)
	})
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
