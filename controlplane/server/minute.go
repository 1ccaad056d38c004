package server

import (
	"maps"
	"slices"
	"time"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// minuteSlot is one of the six 10-second slots of a minuteWindow.
const minuteSlot = 10 * time.Second

// minuteWindow sums one agent's calls per member over about the last
// minute, from its heartbeats, in six 10-second slots: what hangarctl
// shows as call rates and latency. An agent that makes no calls costs
// nothing.
type minuteWindow struct {
	slots [6]map[string]*hangarv1.MemberReport
	start time.Time // start of the current slot
	cur   int
}

// advance moves to the slot holding now, clearing the slots skipped.
func (w *minuteWindow) advance(now time.Time) {
	if w.start.IsZero() {
		w.start = now
		return
	}
	for i := 0; now.Sub(w.start) >= minuteSlot && i < len(w.slots); i++ {
		w.cur = (w.cur + 1) % len(w.slots)
		w.slots[w.cur] = nil
		w.start = w.start.Add(minuteSlot)
	}
	if now.Sub(w.start) >= minuteSlot { // idle for over a minute
		w.start = now
	}
}

// add counts a heartbeat's calls.
func (w *minuteWindow) add(now time.Time, members []*hangarv1.MemberReport) {
	w.advance(now)
	for _, m := range members {
		if len(m.GetCalls()) == 0 {
			continue
		}
		if w.slots[w.cur] == nil {
			w.slots[w.cur] = map[string]*hangarv1.MemberReport{}
		}
		acc := w.slots[w.cur][m.GetMember()]
		if acc == nil {
			acc = &hangarv1.MemberReport{Member: m.GetMember(), Calls: map[string]uint64{}}
			w.slots[w.cur][m.GetMember()] = acc
		}
		addCounts(acc, m)
	}
}

// sum returns the minute's counts by member (nil when there were none).
func (w *minuteWindow) sum(now time.Time) []*hangarv1.MemberReport {
	w.advance(now)
	byMember := map[string]*hangarv1.MemberReport{}
	for _, slot := range w.slots {
		for id, m := range slot {
			acc := byMember[id]
			if acc == nil {
				acc = &hangarv1.MemberReport{Member: id, Calls: map[string]uint64{}}
				byMember[id] = acc
			}
			addCounts(acc, m)
		}
	}
	out := make([]*hangarv1.MemberReport, 0, len(byMember))
	for _, id := range sortedKeys(byMember) {
		out = append(out, byMember[id])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func addCounts(acc, m *hangarv1.MemberReport) {
	for class, n := range m.GetCalls() {
		acc.Calls[class] += n
	}
	for i, n := range m.GetLatencyBuckets() {
		for len(acc.LatencyBuckets) <= i {
			acc.LatencyBuckets = append(acc.LatencyBuckets, 0)
		}
		acc.LatencyBuckets[i] += n
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
