package demo

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// snapshotOf finds the version in a control-plane event's message
// ("out of global rotation: traffic_quorum (snapshot 12)").
var snapshotOf = regexp.MustCompile(`\(snapshot (\d+)\)`)

// logTick is the resolution of the log lines' times: an event logged at
// t happened before t+logTick.
const logTick = time.Millisecond

func (d *demo) killPrimary(ctx context.Context) error {
	d.out.step(5, "Kill -9 the primary",
		"As if its host died. Agent A's next calls find my-mcp gone and move to my-mcp-backup inside",
		"the same call; A takes my-mcp out of its rotation and reports it. The control plane takes",
		"my-mcp out of the fleet's rotation and pushes a snapshot: agent B moves to the backup too.")
	err := d.between(primaryDown, func() error {
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
	d.out.say("!! killed %s (pid %d) with SIGKILL at %s", primaryName, d.primary.proc.PID(), d.elapsed())
	decided, err := d.waitDecision(ctx)
	if err != nil {
		return err
	}
	b := d.agentB()
	err = waitUntil(ctx, failoverTimeout, fmt.Sprintf("%d calls through agent B served by %s after the snapshot", afterDecisionMin, backupName),
		func() (bool, error) {
			return b.traffic.servedSince(d.excludedAt.Add(logTick), backupName) >= afterDecisionMin, nil
		})
	if err != nil {
		return err
	}
	if err := d.waitGroup(ctx, b, "agent B's group status: active member my-mcp-backup, my-mcp out of rotation",
		func(gs groupStatus) bool {
			_, in := gs.member(primaryName)
			return gs.ActiveMember == backupName && !in && gs.Snapshot >= d.excludedIn
		}); err != nil {
		return err
	}
	d.printDecision(decided, killedAt)
	if err := d.groupStatusCtl(ctx, "the control plane's view now: my-mcp out of the fleet's rotation, my-mcp-backup active:"); err != nil {
		return err
	}
	return sleep(ctx, time.Until(killedAt.Add(minDownFor)))
}

// waitDecision waits for agent A to eject the primary, the control plane
// to take it out of the fleet's rotation and agent B to apply that
// snapshot, and returns the control plane's event.
func (d *demo) waitDecision(ctx context.Context) (logEvent, error) {
	ejected, err := d.waitEvent(ctx, d.agentA().log, failoverTimeout, "agent A takes my-mcp out of its rotation",
		is("member_removed_from_rotation", "member", primaryName))
	if err != nil {
		return logEvent{}, err
	}
	d.ejectedAt = ejected.At
	decided, err := d.waitEvent(ctx, d.cp.log, decisionTimeout, "the control plane takes my-mcp out of the fleet's rotation",
		is("member_out_of_rotation", "group", groupName, "member", primaryName))
	if err != nil {
		return logEvent{}, err
	}
	if d.excludedIn, err = snapshotVersion(decided); err != nil {
		return logEvent{}, err
	}
	applied, err := d.waitEvent(ctx, d.agentB().log, decisionTimeout, fmt.Sprintf("agent B applies snapshot %d", d.excludedIn),
		func(ev logEvent) bool { return ev.Name == "snapshot_applied" && ev.uint("version") >= d.excludedIn })
	if err != nil {
		return logEvent{}, err
	}
	d.excludedAt = applied.At
	return decided, nil
}

// printDecision explains how the primary left the fleet's rotation and
// what agent B's calls did before and after.
func (d *demo) printDecision(decided logEvent, killedAt time.Time) {
	b := d.agentB()
	d.out.blank()
	d.out.say("agent A ejected my-mcp at %s: its own calls failed there and moved to the backup", d.at(d.ejectedAt))
	bEjected, selfEjected := b.log.find(is("member_removed_from_rotation", "member", primaryName))
	selfEjected = selfEjected && !bEjected.At.After(d.excludedAt)
	if selfEjected {
		d.out.say("agent B ejected my-mcp at %s the same way, before the control plane decided", d.at(bEjected.At))
	}
	d.out.say("the control plane took my-mcp out of the fleet's rotation in snapshot %d (reason: %s)",
		d.excludedIn, reasonOf(decided))
	d.out.say("agent B applied it at %s: %s after agent A's ejection",
		d.at(d.excludedAt), d.excludedAt.Sub(d.ejectedAt).Round(time.Millisecond))
	if selfEjected && reasonOf(decided) == "traffic_quorum" {
		d.out.say("(health.quorum 0.5: a member leaves when more than half of the agents calling it eject it;")
		d.out.say(" agent A alone is 1 of 2 callers, so the decision waited for agent B's own ejection)")
	}
	before, sentBefore := b.traffic.triedPrimary(killedAt, d.excludedAt.Add(logTick))
	after, sentAfter := b.traffic.triedPrimary(d.excludedAt.Add(logTick), time.Now())
	d.out.say("agent B's calls since snapshot %d: %d sent, %d to my-mcp, all served by %s",
		d.excludedIn, sentAfter, after, backupName)
	d.out.say("agent B's calls between the kill and the snapshot: %d sent, %d tried my-mcp first (moved to the backup)",
		sentBefore, before)
}

func (d *demo) restartPrimary(ctx context.Context) error {
	d.out.step(6, "Restart the primary on its old address",
		"The agents' health checks see my-mcp answer again. The control plane puts it back in the",
		"fleet's rotation once no quorum of its callers of the last 10 s ejects it, and both agents",
		"fail back to their priority 1 member.")
	err := d.between(afterRestart, func() error {
		return d.countUpstreams(ctx, primaryDown, nil, d.backup)
	})
	if err != nil {
		return err
	}
	addr := d.primary.addr
	if d.primary, err = startUpstream(ctx, d.opts.bin, primaryName, addr); err != nil {
		return fmt.Errorf("restart the primary on %s: %w", addr, err)
	}
	d.out.say("!! restarted %s at %s (pid %d) at %s", primaryName, d.primary.url(), d.primary.proc.PID(), d.elapsed())
	back, err := d.waitEvent(ctx, d.cp.log, failbackTimeout, "the control plane puts my-mcp back in the fleet's rotation",
		is("member_in_rotation", "group", groupName, "member", primaryName))
	if err != nil {
		return err
	}
	if d.readmittedIn, err = snapshotVersion(back); err != nil {
		return err
	}
	applied, err := d.waitEvent(ctx, d.agentB().log, failbackTimeout, fmt.Sprintf("agent B applies snapshot %d", d.readmittedIn),
		func(ev logEvent) bool { return ev.Name == "snapshot_applied" && ev.uint("version") >= d.readmittedIn })
	if err != nil {
		return err
	}
	d.readmittedAt = applied.At
	for _, a := range d.agents {
		if _, err := d.waitEvent(ctx, a.log, failbackTimeout, a.label()+" fails back to my-mcp",
			is("failback", "group", groupName, "to", primaryName)); err != nil {
			return err
		}
		err := d.waitGroup(ctx, a, a.label()+"'s group status: active member my-mcp, both members in rotation",
			func(gs groupStatus) bool {
				_, p := gs.member(primaryName)
				_, b := gs.member(backupName)
				return gs.ActiveMember == primaryName && p && b
			})
		if err != nil {
			return err
		}
	}
	d.out.blank()
	d.out.say("both agents serve from %s again; snapshot %d put it back (agent B applied it at %s)",
		primaryName, d.readmittedIn, d.at(d.readmittedAt))
	if err := d.groupStatusCtl(ctx, "the control plane's view after the failback:"); err != nil {
		return err
	}
	return sleep(ctx, afterFailbackFor)
}

// snapshotVersion reads the snapshot named in a control-plane event.
func snapshotVersion(ev logEvent) (uint64, error) {
	m := snapshotOf.FindStringSubmatch(ev.Attrs["message"])
	if m == nil {
		return 0, fmt.Errorf("the control plane's %s line names no snapshot: message=%q", ev.Name, ev.Attrs["message"])
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// reasonOf reads the reason in a member_out_of_rotation message
// ("out of global rotation: traffic_quorum (snapshot 12)").
func reasonOf(ev logEvent) string {
	msg := ev.Attrs["message"]
	if _, r, ok := strings.Cut(msg, ": "); ok {
		msg = r
	}
	msg, _, _ = strings.Cut(msg, " (snapshot")
	return msg
}

// waitEvent waits for a log event of one process.
func (d *demo) waitEvent(ctx context.Context, l *logbook, timeout time.Duration, what string, match func(logEvent) bool) (logEvent, error) {
	var ev logEvent
	err := waitUntil(ctx, timeout, what, func() (bool, error) {
		var ok bool
		ev, ok = l.find(match)
		return ok, nil
	})
	if err != nil {
		err = fmt.Errorf("%w (see %s's log)", err, l.label)
	}
	return ev, err
}

// waitGroup polls an agent's hangar_details until ok holds.
func (d *demo) waitGroup(ctx context.Context, a *agent, what string, ok func(groupStatus) bool) error {
	return waitUntil(ctx, failoverTimeout, what, func() (bool, error) {
		gs, err := details(ctx, a.cs)
		if err != nil {
			return false, err
		}
		if ok(gs) {
			return true, nil
		}
		return false, fmt.Errorf("last status: %s", gs.oneLine())
	})
}
