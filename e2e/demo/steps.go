package demo

import (
	"context"
	"fmt"
	"time"
)

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

func (d *demo) startControlPlane(ctx context.Context) error {
	d.out.step(2, "Start the control plane with the failover recipe",
		"hangar-controlplane (embedded etcd, the default) stores MCP Hangar's configuration file",
		"unchanged, decides each group's fleet-wide rotation from every agent's reports and pushes",
		"it to the agents as versioned snapshots. Group my-mcp-group prefers my-mcp (priority 1).")
	path, text, err := writeConfig(d.opts.dir, d.primary.url(), d.backup.url())
	if err != nil {
		return err
	}
	d.config = path
	d.out.say("--fleet-config %s:", path)
	d.out.block(text)
	log := newLogbook("control plane", d.out, controlPlaneEvents, d.opts.verbose)
	if d.cp, err = startControlPlane(d.opts.bin, d.opts.dir, path, log); err != nil {
		return fmt.Errorf("start hangar-controlplane: %w", err)
	}
	d.out.say("hangar-controlplane replica %s: agents' gRPC at %s, /metrics at http://%s (pid %d)",
		d.cp.replica, d.cp.grpc, d.cp.http, d.cp.proc.PID())
	d.out.say("embedded etcd in %s", d.cp.dataDir)
	return nil
}

func (d *demo) startAgents(ctx context.Context) error {
	d.out.step(3, "Start two agents managed by the control plane",
		"hangar-agent A and B get no --config: each connects to the control plane, receives the fleet",
		"file in its snapshot, and keeps that snapshot in its --state-dir (it boots from it when",
		"no control plane answers). Then each probes the members and is ready to route.")
	for _, name := range []string{"A", "B"} {
		log := newLogbook("agent "+name, d.out, agentEvents, d.opts.verbose)
		a, err := startAgent(d.opts.bin, d.opts.dir, name, d.cp.grpc, log)
		if err != nil {
			return fmt.Errorf("start hangar-agent %s: %w", name, err)
		}
		d.agents = append(d.agents, a)
		// The front door listens at once and serves once the first
		// snapshot brought the fleet: /health/ready says when.
		if err := waitUntil(ctx, readyTimeout, "agent "+name+" ready (/health/ready)", a.ready); err != nil {
			return err
		}
		if a.cs, err = connect(ctx, a.url()); err != nil {
			return err
		}
	}
	// Every agent that connects changes the snapshot (which agent probes
	// which member): wait until both agents run the same one for a while.
	var version float64
	var since time.Time
	err := waitUntil(ctx, readyTimeout, "both agents connected, on the latest snapshot, with both members ready",
		func() (bool, error) {
			m, err := d.cp.metrics(ctx)
			if err != nil {
				return false, err
			}
			if v := m["hangar_controlplane_snapshot_version"]; v != version {
				version, since = v, time.Now()
			}
			if n := m["hangar_controlplane_agents_connected"]; n != 2 {
				return false, fmt.Errorf("the control plane has %v agents connected", n)
			}
			for _, a := range d.agents {
				gs, err := details(ctx, a.cs)
				if err != nil {
					return false, err
				}
				if !gs.allReady() || float64(gs.Snapshot) != version {
					return false, fmt.Errorf("%s: %s", a.label(), gs.oneLine())
				}
			}
			return time.Since(since) >= settleFor, nil
		})
	if err != nil {
		return err
	}
	d.out.say("control plane: hangar_controlplane_agents_connected=2 hangar_controlplane_snapshot_version=%v", version)
	for _, a := range d.agents {
		connected, _ := a.log.find(is("control_plane_connected"))
		first, _ := a.log.find(is("snapshot_applied"))
		gs, err := details(ctx, a.cs)
		if err != nil {
			return err
		}
		d.out.say("%s (--agent-id %s, pid %d) MCP at %s", a.label(), a.id, a.proc.PID(), a.url())
		d.out.say("  connected to %s, first snapshot version %d; now on version %d (hangar_details)",
			connected.Attrs["endpoint"], first.uint("version"), gs.Snapshot)
	}
	if err := d.settleView(ctx); err != nil {
		return err
	}
	return d.groupStatusCtl(ctx, "the group as an operator sees it: hangarctl asks the control plane (AdminService, same gRPC port):")
}

func (d *demo) startTraffic(ctx context.Context) error {
	d.out.step(4, "Send steady traffic through both agents",
		fmt.Sprintf("Clients call add(n, 1) on %s through each agent's hangar_call tool: %d calls a", groupName, d.opts.rateA),
		fmt.Sprintf("second through agent A, %d through agent B. Once a second per agent: calls sent,", d.opts.rateB),
		"answered (ok), failed, and which member served them (running totals).")
	d.start = time.Now()
	rates := []int{d.opts.rateA, d.opts.rateB}
	for i, a := range d.agents {
		a.traffic = newTraffic(a.label(), a.cs, rates[i], i*1_000_000, d.out)
	}
	for _, a := range d.agents {
		a.log.goLive(d.start)
	}
	d.cp.log.goLive(d.start)
	tctx, cancel := context.WithCancel(ctx)
	d.stopTraffic = cancel
	for _, a := range d.agents {
		d.trafficWG.Go(func() { a.traffic.run(tctx, ctx) })
	}
	d.trafficWG.Go(func() { d.report(tctx) })
	if err := sleep(ctx, steadyFor); err != nil {
		return err
	}
	for _, a := range d.agents {
		if a.traffic.served(beforeKill, primaryName) == 0 {
			return fmt.Errorf("no call through %s was served by %s in the first %s: the group should prefer its priority 1 member",
				a.label(), primaryName, steadyFor)
		}
	}
	return nil
}

// report prints each agent's running totals once a second until ctx ends.
func (d *demo) report(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t := fmt.Sprintf("t=%ds", int(time.Since(d.start).Round(time.Second).Seconds()))
			for _, a := range d.agents {
				d.out.say("%-4s %s", t, a.traffic.line())
			}
		}
	}
}

// between stops every agent's traffic, waits for the calls in flight, runs
// fn and moves all traffic to phase next before calls resume.
func (d *demo) between(next phase, fn func() error) error {
	return betweenAll(d.agents, next, fn)
}

func betweenAll(agents []*agent, next phase, fn func() error) error {
	if len(agents) == 0 {
		return fn()
	}
	return agents[0].traffic.between(next, func() error { return betweenAll(agents[1:], next, fn) })
}
