package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// A heartbeat that only moves the last calls within the same
// minuteRefresh period leaves the stored report, and so the reports in
// etcd, as they were; a caller still counts for the whole call window.
func TestStoredReportIgnoresHeartbeatTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(500 * time.Millisecond) // just after a boundary
	report := func(at time.Time) *hangarv1.Report {
		return &hangarv1.Report{Seq: uint64(at.Unix()), At: ts(at), Heartbeat: true,
			Members: []*hangarv1.MemberReport{{Member: "m", State: hangarv1.MemberState_MEMBER_STATE_READY, LastCall: ts(at),
				Calls: map[string]uint64{"ok": 3}, LatencyBuckets: []uint64{1, 2}}},
			Groups: []*hangarv1.GroupReport{{Group: "g", LastCall: ts(at)}}}
	}
	c := &agentConn{}
	if !c.setStored(storedReport(report(t0))) {
		t.Fatal("the first report did not change the stored one")
	}
	for s := 1; s < 4; s++ {
		if c.setStored(storedReport(report(t0.Add(time.Duration(s) * time.Second)))) {
			t.Fatalf("a heartbeat %d s later changed the stored report", s)
		}
	}
	if !c.setStored(storedReport(report(t0.Add(minuteRefresh)))) {
		t.Fatalf("a heartbeat %s later did not renew the last call", minuteRefresh)
	}
	// The last call published is never before the real one, and at most
	// minuteRefresh after it.
	last := c.stored.GetMembers()[0].GetLastCall().AsTime()
	real := t0.Add(minuteRefresh)
	if last.Before(real) || last.Sub(real) > minuteRefresh {
		t.Errorf("published last call %s for a call at %s", last, real)
	}
	v := c.aggView()
	for _, after := range []time.Duration{0, aggregate.CallWindow} {
		if got := v.Members["m"].LastCall; real.Add(after).Sub(got) > aggregate.CallWindow {
			t.Errorf("%s after the call, the leader sees the last call at %s: out of the window", after, got)
		}
	}
}

// sameStored must agree with proto.Equal on stored reports.
func TestSameStoredMatchesProtoEqual(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 3, 0, time.UTC)
	base := func() *hangarv1.Report {
		return storedReport(&hangarv1.Report{
			Members: []*hangarv1.MemberReport{{Member: "m", State: hangarv1.MemberState_MEMBER_STATE_READY, Probed: true,
				EjectedIn: []string{"g"}, ServerEjectedIn: []string{"g"}, ConsecutiveFailures: 1, LastCall: ts(at)}},
			Groups: []*hangarv1.GroupReport{{Group: "g", Breaker: hangarv1.BreakerState_BREAKER_STATE_CLOSED, ConsecutiveFailures: 2, LastCall: ts(at)}}})
	}
	mutations := map[string]func(r *hangarv1.Report){
		"nothing":              func(*hangarv1.Report) {},
		"member id":            func(r *hangarv1.Report) { r.Members[0].Member = "n" },
		"member state":         func(r *hangarv1.Report) { r.Members[0].State = hangarv1.MemberState_MEMBER_STATE_DEGRADED },
		"probed":               func(r *hangarv1.Report) { r.Members[0].Probed = false },
		"ejected in":           func(r *hangarv1.Report) { r.Members[0].EjectedIn = nil },
		"server ejected in":    func(r *hangarv1.Report) { r.Members[0].ServerEjectedIn = []string{"h"} },
		"member failures":      func(r *hangarv1.Report) { r.Members[0].ConsecutiveFailures = 4 },
		"member last call":     func(r *hangarv1.Report) { r.Members[0].LastCall = ts(at.Add(time.Hour)) },
		"member never called":  func(r *hangarv1.Report) { r.Members[0].LastCall = nil },
		"member added":         func(r *hangarv1.Report) { r.Members = append(r.Members, &hangarv1.MemberReport{Member: "x"}) },
		"group id":             func(r *hangarv1.Report) { r.Groups[0].Group = "h" },
		"breaker":              func(r *hangarv1.Report) { r.Groups[0].Breaker = hangarv1.BreakerState_BREAKER_STATE_OPEN },
		"group failures":       func(r *hangarv1.Report) { r.Groups[0].ConsecutiveFailures = 0 },
		"group last call":      func(r *hangarv1.Report) { r.Groups[0].LastCall = ts(at.Add(-time.Hour)) },
		"group never called":   func(r *hangarv1.Report) { r.Groups[0].LastCall = nil },
		"group removed":        func(r *hangarv1.Report) { r.Groups = nil },
		"epoch last call zero": func(r *hangarv1.Report) { r.Groups[0].LastCall = &timestamppb.Timestamp{} },
	}
	for name, mutate := range mutations {
		a, b := base(), base()
		mutate(b)
		if got, want := sameStored(a, b), proto.Equal(a, b); got != want {
			t.Errorf("%s: sameStored %v, proto.Equal %v", name, got, want)
		}
	}
}

func TestRoundUp(t *testing.T) {
	for _, tc := range []struct{ sec, nanos, want int64 }{
		{10, 0, 10}, {10, 1, 15}, {11, 0, 15}, {14, 999, 15}, {0, 0, 0},
	} {
		got := roundUp(&timestamppb.Timestamp{Seconds: tc.sec, Nanos: int32(tc.nanos)})
		if got.GetSeconds() != tc.want || got.GetNanos() != 0 {
			t.Errorf("roundUp(%d s %d ns) = %v, want %d s", tc.sec, tc.nanos, got, tc.want)
		}
	}
	if roundUp(nil) != nil {
		t.Error("roundUp(nil) is not nil")
	}
}
