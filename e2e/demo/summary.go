package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func (d *demo) summarize(ctx context.Context) error {
	d.out.step(6, "Summary",
		"Calls served by each member in each phase, as the client saw them (mcp_server_used) and as",
		"each mcp-math counted them itself, then every process is stopped.")
	d.stopTrafficAndWait()
	if err := d.countUpstreams(ctx, afterRestart, d.primary, d.backup); err != nil {
		return err
	}
	d.stop()

	d.out.say("%-38s %12s %13s %14s", "add calls served", phaseNames[beforeKill], phaseNames[primaryDown], phaseNames[afterRestart])
	mismatch := false
	for _, m := range []string{primaryName, backupName} {
		var client, own [numPhases]string
		for p := range numPhases {
			c, o := d.traffic.served(p, m), d.upstreamCounts[p][m]
			client[p], own[p] = fmt.Sprint(c), fmt.Sprint(o)
			if m == primaryName && p == primaryDown {
				own[p] = "(dead)"
			}
			mismatch = mismatch || c != o
		}
		d.out.say("%-38s %12s %13s %14s", m+" as the client saw it", client[0], client[1], client[2])
		d.out.say("%-38s %12s %13s %14s", m+" as its mcp-math counted", own[0], own[1], own[2])
	}
	if mismatch {
		d.out.say("note: the two views differ; an upstream counts a call it received even if its answer was lost")
	}
	down := d.traffic.phaseCounts(primaryDown)
	d.out.say("calls retried on %s inside the same call while %s was down: %d", backupName, primaryName, down.retried)
	d.out.say("every process the demo started is stopped; the agent's full log: %s (%s in all)",
		filepath.Join(d.opts.dir, agentLogFile), time.Since(d.began).Round(time.Second))

	tot := d.traffic.totals()
	verdict := fmt.Sprintf("%d calls sent, %d ok, %d FAILED", tot.sent, tot.ok, tot.failed)
	if tot.failed > 0 {
		return fmt.Errorf("%s (during failover and failback no call should fail)", verdict)
	}
	if tot.ok != tot.sent {
		return fmt.Errorf("%s, %d without an answer", verdict, tot.sent-tot.ok)
	}
	d.banner("PASS", fmt.Sprintf("%d calls sent, %d failed; failover to %s and failback to %s both happened",
		tot.sent, tot.failed, backupName, primaryName))
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

// stop ends the traffic and every process the demo started, and saves the
// agent's full log in the work directory. It is idempotent.
func (d *demo) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.stopTrafficAndWait()
	if d.cs != nil {
		_ = d.cs.Close() // the agent may be gone already
	}
	if d.agent != nil {
		if err := d.agent.proc.Stop(stopGrace); err != nil {
			d.out.say("hangar-agent did not stop cleanly: %v", err)
		}
		path := filepath.Join(d.opts.dir, agentLogFile)
		if err := os.WriteFile(path, []byte(d.agent.proc.Output()), 0o644); err != nil {
			d.out.say("could not save the agent's log: %v", err)
		}
	}
	for _, u := range []*upstream{d.primary, d.backup} {
		if u != nil {
			_ = u.proc.Stop(stopGrace) // a killed primary has exited already
		}
	}
}

// banner prints the demo's verdict so it cannot be missed.
func (d *demo) banner(verdict, text string) {
	rule := strings.Repeat("=", 72)
	d.out.blank()
	d.out.say("%s", rule)
	d.out.say("%s: %s", verdict, text)
	d.out.say("%s", rule)
}
