package demo

import (
	"time"
)

// window is a span of time in which an agent ran a snapshot that took the
// primary out of the group's global rotation.
type window struct {
	from, to time.Time
	version  uint64 // the snapshot that opened it
}

// exclusions returns the windows in which the agent logging to agentLog
// ran a snapshot excluding the primary, from the control plane's
// member_out_of_rotation / member_in_rotation events (each names the
// snapshot that made the change) and the agent's snapshot_applied lines.
// Log times are cut to the millisecond and an agent logs a snapshot just
// after applying it, so a window starts logTick after the excluding line
// and ends logTick before the next including one (or at end): a call sent
// inside it was certainly routed under the excluding snapshot.
func exclusions(cpLog, agentLog *logbook, end time.Time) []window {
	type change struct {
		version uint64
		out     bool
	}
	var changes []change
	cpLog.each(func(ev logEvent) {
		out := ev.Name == "member_out_of_rotation"
		if (out || ev.Name == "member_in_rotation") && ev.Attrs["group"] == groupName && ev.Attrs["member"] == primaryName {
			if v, err := snapshotVersion(ev); err == nil {
				changes = append(changes, change{v, out})
			}
		}
	})
	excluded := func(v uint64) bool {
		out := false
		for _, c := range changes {
			if c.version <= v {
				out = c.out
			}
		}
		return out
	}
	var (
		windows []window
		open    *window
	)
	agentLog.each(func(ev logEvent) {
		if ev.Name != "snapshot_applied" {
			return
		}
		v := ev.uint("version")
		switch ex := excluded(v); {
		case ex && open == nil:
			open = &window{from: ev.At.Add(logTick), version: v}
		case !ex && open != nil:
			open.to = ev.At.Add(-logTick)
			windows = append(windows, *open)
			open = nil
		}
	})
	if open != nil {
		open.to = end
		windows = append(windows, *open)
	}
	return windows
}

// excludedCalls sums, over windows, the calls sent through a and those of
// them a sent to the primary, and counts a's failover lines away from the
// primary logged inside them (its own view of the same thing).
func excludedCalls(a *agent, windows []window) (sent, toPrimary, logged int) {
	for _, w := range windows {
		tried, n := a.traffic.triedPrimary(w.from, w.to)
		sent, toPrimary = sent+n, toPrimary+tried
		logged += a.log.count(func(ev logEvent) bool {
			return ev.Name == "failover" && ev.Attrs["from"] == primaryName && !ev.At.Before(w.from) && ev.At.Before(w.to)
		})
	}
	return sent, toPrimary, logged
}
