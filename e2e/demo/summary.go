package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// eventsShown is how many of the control plane's recent events step 7 shows.
const eventsShown = 8

func (d *demo) summarize(ctx context.Context) error {
	d.out.step(7, "Summary",
		"The control plane's record of the run (hangarctl events); calls served by each member in each",
		"phase, as each agent's client saw them (mcp_server_used) and as each mcp-math counted them",
		"itself; then what each agent did while the control plane's snapshot excluded my-mcp. Every",
		"process is stopped.")
	d.stopTrafficAndWait()
	if err := d.showCtl(ctx, "", "events", "--group", groupName, "--limit", fmt.Sprint(eventsShown)); err != nil {
		return err
	}
	if err := d.countUpstreams(ctx, afterRestart, d.primary, d.backup); err != nil {
		return err
	}
	conv, err := d.cp.metrics(ctx)
	if err != nil {
		return err
	}
	d.stop()

	d.printServed()
	d.out.say("calls that tried my-mcp, failed there and were served by %s inside the same call:", backupName)
	for _, a := range d.agents {
		d.out.say("  %s: %d", a.label(), a.traffic.phaseCounts(primaryDown).retried)
	}
	toPrimary := d.printExcluded()
	d.out.say("agent A's ejection of my-mcp to agent B's snapshot: %s", d.excludedAt.Sub(d.ejectedAt).Round(time.Millisecond))
	if n := conv["hangar_controlplane_convergence_seconds_count"]; n > 0 {
		d.out.say("decision to ACK over the run (hangar_controlplane_convergence_seconds): %.0f ACKs, mean %s", n,
			time.Duration(conv["hangar_controlplane_convergence_seconds_sum"]/n*float64(time.Second)).Round(100*time.Microsecond))
	}
	d.out.say("every process the demo started is stopped; logs: %s (%s in all)",
		filepath.Join(d.opts.dir, "*.log"), time.Since(d.began).Round(time.Second))
	return d.verdict(toPrimary)
}

// printExcluded prints, per agent, the calls sent while the agent ran a
// snapshot excluding the primary, and returns how many went to it.
func (d *demo) printExcluded() (toPrimary int) {
	d.out.say("calls sent while the agent ran a snapshot excluding my-mcp (the control plane's decision):")
	for _, a := range d.agents {
		ws := exclusions(d.cp.log, a.log, d.stoppedAt)
		sent, tried, logged := excludedCalls(a, ws)
		toPrimary += tried
		var span time.Duration
		var versions []string
		for _, w := range ws {
			span += w.to.Sub(w.from)
			versions = append(versions, fmt.Sprint(w.version))
		}
		d.out.say("  %s: %d sent in %s (snapshot %s), %d to my-mcp; its log: %d failovers from my-mcp",
			a.label(), sent, span.Round(100*time.Millisecond), strings.Join(versions, " and "), tried, logged)
	}
	return toPrimary
}

// printServed prints the served-calls table: per member, per agent (client
// view) and per upstream (its own counter), per phase.
func (d *demo) printServed() {
	row := "%-40s %12s %13s %14s"
	d.out.say(row, "add calls served", phaseNames[beforeKill], phaseNames[primaryDown], phaseNames[afterRestart])
	mismatch := false
	for _, m := range []string{primaryName, backupName} {
		var sum [numPhases]int
		for _, a := range d.agents {
			var cells [numPhases]string
			for p := range numPhases {
				n := a.traffic.served(p, m)
				sum[p] += n
				cells[p] = fmt.Sprint(n)
			}
			d.out.say(row, fmt.Sprintf("%-14s via %s (client)", m, a.label()), cells[0], cells[1], cells[2])
		}
		var own [numPhases]string
		for p := range numPhases {
			own[p] = fmt.Sprint(d.upstreamCounts[p][m])
			if m == primaryName && p == primaryDown {
				own[p] = "(dead)"
			}
			mismatch = mismatch || sum[p] != d.upstreamCounts[p][m]
		}
		d.out.say(row, fmt.Sprintf("%-14s its mcp-math counted", m), own[0], own[1], own[2])
	}
	if mismatch {
		d.out.say("note: the views differ; an upstream counts a call it received even if its answer was lost")
	}
}

// logbooks are the logs of the control plane and the agents.
func (d *demo) logbooks() []*logbook {
	var ls []*logbook
	if d.cp != nil {
		ls = append(ls, d.cp.log)
	}
	for _, a := range d.agents {
		ls = append(ls, a.log)
	}
	return ls
}

// verdict prints the banner and returns the error that fails the demo:
// a failed or unanswered call, or calls an agent sent to the primary while
// its snapshot excluded it.
func (d *demo) verdict(toPrimary int) error {
	var sent, ok, failed int
	for _, a := range d.agents {
		c := a.traffic.totals()
		sent, ok, failed = sent+c.sent, ok+c.ok, failed+c.failed
	}
	counts := fmt.Sprintf("%d calls sent through 2 agents, %d ok, %d FAILED", sent, ok, failed)
	switch {
	case failed > 0:
		return fmt.Errorf("%s (during failover and failback no call should fail)", counts)
	case ok != sent:
		return fmt.Errorf("%s, %d without an answer", counts, sent-ok)
	case toPrimary > 0:
		return fmt.Errorf("%d calls were sent to %s while the agent's snapshot excluded it: the control plane's decision must hold at once",
			toPrimary, primaryName)
	}
	d.banner("PASS", fmt.Sprintf("%d calls through 2 agents, 0 failed; failover and failback on both agents;", sent),
		fmt.Sprintf("no agent sent a call to %s its snapshot excluded (B's came %s after A's ejection)",
			primaryName, d.excludedAt.Sub(d.ejectedAt).Round(time.Millisecond)))
	return nil
}

// countUpstreams records the add calls each given upstream served in phase
// p. The backup lives through every phase, so its earlier phases are
// subtracted; each primary process lives in one counted phase only (the
// first is killed at the end of beforeKill, the second starts
// afterRestart). A nil upstream is skipped.
func (d *demo) countUpstreams(ctx context.Context, p phase, primary, backup *upstream) error {
	if primary != nil {
		n, err := primary.addCalls(ctx)
		if err != nil {
			return err
		}
		d.upstreamCounts[p][primary.name] = n
	}
	if backup != nil {
		n, err := backup.addCalls(ctx)
		if err != nil {
			return err
		}
		for q := range p {
			n -= d.upstreamCounts[q][backup.name]
		}
		d.upstreamCounts[p][backup.name] = n
	}
	return nil
}

// stopTrafficAndWait stops sending, lets the calls in flight finish and
// stops the once-a-second lines.
func (d *demo) stopTrafficAndWait() {
	if d.stopTraffic != nil {
		d.stopTraffic()
		d.trafficWG.Wait()
		d.stopTraffic = nil
	}
}

// stop ends the traffic and every process the demo started (agents, then
// the control plane, then the upstreams), and saves the logs of the agents
// and the control plane in the work directory. It is idempotent.
func (d *demo) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.stopTrafficAndWait()
	d.stoppedAt = time.Now()
	for _, l := range d.logbooks() {
		l.mute() // shutting down is not news; the saved logs have every line
	}
	for _, a := range d.agents {
		if a.cs != nil {
			_ = a.cs.Close() // the agent may be gone already
		}
		if err := a.proc.Stop(stopGrace); err != nil {
			d.out.say("%s did not stop cleanly: %v", a.label(), err)
		}
		saveLog(d.out, a.proc, d.opts.dir, a.id)
	}
	if d.cp != nil {
		if err := d.cp.proc.Stop(stopGrace); err != nil {
			d.out.say("the control plane did not stop cleanly: %v", err)
		}
		saveLog(d.out, d.cp.proc, d.opts.dir, "controlplane")
	}
	for _, u := range []*upstream{d.primary, d.backup} {
		if u != nil {
			_ = u.proc.Stop(stopGrace) // a killed primary has exited already
		}
	}
}

// banner prints the demo's verdict so it cannot be missed.
func (d *demo) banner(verdict string, lines ...string) {
	rule := strings.Repeat("=", 72)
	d.out.blank()
	d.out.say("%s", rule)
	for i, l := range lines {
		if i == 0 {
			d.out.say("%s: %s", verdict, l)
			continue
		}
		d.out.say("%*s  %s", len(verdict), "", l)
	}
	d.out.say("%s", rule)
}
