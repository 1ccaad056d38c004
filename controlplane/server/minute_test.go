package server

import (
	"testing"
	"time"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func heartbeat(member string, ok uint64) []*hangarv1.MemberReport {
	return []*hangarv1.MemberReport{{Member: member, Calls: map[string]uint64{"ok": ok}, LatencyBuckets: []uint64{ok}}}
}

func TestMinuteWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var w minuteWindow
	if got := w.sum(t0); got != nil {
		t.Fatalf("empty window: %v", got)
	}
	for i := range 60 { // one heartbeat a second, 2 ok calls each
		w.add(t0.Add(time.Duration(i)*time.Second), heartbeat("m", 2))
	}
	got := w.sum(t0.Add(59 * time.Second))
	if len(got) != 1 || got[0].GetCalls()["ok"] != 120 || got[0].GetLatencyBuckets()[0] != 120 {
		t.Fatalf("a full minute: %v, want 120 ok calls", got)
	}
	// 30 s later the first three slots have gone.
	if got := w.sum(t0.Add(89 * time.Second)); got[0].GetCalls()["ok"] != 60 {
		t.Fatalf("after 30 s more: %v, want 60 ok calls", got)
	}
	// Idle for over a minute: nothing left.
	if got := w.sum(t0.Add(200 * time.Second)); got != nil {
		t.Fatalf("after a quiet minute: %v, want none", got)
	}
	// Heartbeats without calls cost nothing.
	w.add(t0.Add(201*time.Second), []*hangarv1.MemberReport{{Member: "m"}})
	if got := w.sum(t0.Add(201 * time.Second)); got != nil {
		t.Fatalf("no calls: %v", got)
	}
}
