package controlclient

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/latency"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// A view with one degraded, ejected member, one never called, and an open breaker.
var (
	viewMembers = []router.MemberView{
		{ID: "my-mcp", State: health.Degraded, Probed: true, EjectedIn: []string{"g"}, ConsecutiveFailures: 3,
			LastCall: epoch.Add(-time.Second)},
		{ID: "my-mcp-backup", State: health.Ready},
	}
	viewGroups = []router.GroupView{{ID: "g", Breaker: breaker.Open, ConsecutiveFailures: 10, LastCall: epoch}}
)

// wantReport is the report of the view above, without counters.
func wantReport(seq uint64, at time.Time, heartbeat bool) *hangarv1.Report {
	return &hangarv1.Report{
		Seq: seq, At: timestamppb.New(at), Heartbeat: heartbeat,
		Members: []*hangarv1.MemberReport{
			{Member: "my-mcp", State: hangarv1.MemberState_MEMBER_STATE_DEGRADED, Probed: true, EjectedIn: []string{"g"},
				ConsecutiveFailures: 3, LastCall: timestamppb.New(epoch.Add(-time.Second))},
			{Member: "my-mcp-backup", State: hangarv1.MemberState_MEMBER_STATE_READY},
		},
		Groups: []*hangarv1.GroupReport{{Group: "g", Breaker: hangarv1.BreakerState_BREAKER_STATE_OPEN,
			ConsecutiveFailures: 10, LastCall: timestamppb.New(epoch)}},
	}
}

func connectWithView(t *testing.T) (*harness, *fakeStream) {
	t.Helper()
	cp := startCP(t)
	h := run(t, []string{cp.addr}, nil, func(c *Client) { c.agent.(*fakeAgent).setView(viewMembers, viewGroups) })
	fs := cp.accept(t)
	fs.hello(t)
	if diff := cmp.Diff(wantReport(1, epoch, false), fs.report(t), protocmp.Transform()); diff != "" {
		t.Fatalf("first report (-want +got):\n%s", diff)
	}
	return h, fs
}

func TestEdgeReport(t *testing.T) {
	h, fs := connectWithView(t)
	obs := h.c.Observer()
	changes := []struct {
		name  string
		burst func()
	}{
		{"member state", func() { obs.MemberState("my-mcp", health.Degraded) }},
		{"breaker", func() { obs.Breaker("g", breaker.Open) }},
		{"rotation", func() { obs.Rotation("g", "my-mcp", false) }},
		{"burst of all three", func() {
			obs.MemberState("my-mcp", health.Degraded)
			obs.Rotation("g", "my-mcp", false)
			obs.Breaker("g", breaker.Open)
		}},
	}
	seq, now := uint64(1), epoch
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			c.burst()
			h.clk.WaitForTimers(2) // the heartbeat and the coalescing timer
			h.clk.Advance(coalesce)
			seq, now = seq+1, now.Add(coalesce)
			if diff := cmp.Diff(wantReport(seq, now, false), fs.report(t), protocmp.Transform()); diff != "" {
				t.Errorf("edge report (-want +got):\n%s", diff)
			}
		})
	}
	// Each change above gave exactly one report: the next one is the heartbeat.
	h.clk.Advance(epoch.Add(DefaultHeartbeat).Sub(now))
	if r := fs.report(t); !r.GetHeartbeat() || r.GetSeq() != seq+1 {
		t.Errorf("got report seq %d heartbeat %v, want the heartbeat with seq %d", r.GetSeq(), r.GetHeartbeat(), seq+1)
	}
}

func TestHeartbeatCounters(t *testing.T) {
	h, fs := connectWithView(t)
	obs := h.c.Observer()
	obs.Attempt("g", "my-mcp", "add", outcome.OK, 3*time.Millisecond)
	obs.Attempt("g", "my-mcp", "add", outcome.OK, 5*time.Millisecond) // on a bound: counted in it
	obs.Attempt("g", "my-mcp", "add", outcome.Timeout, 2*time.Second)
	obs.Attempt("", "my-mcp-backup", "add", outcome.ConnectError, 40*time.Microsecond)
	obs.Attempt("", "gone", "add", outcome.OK, time.Millisecond) // not in the view: not reported
	buckets := func(counts map[int]uint64) []uint64 {
		b := make([]uint64, len(latency.Bounds))
		for i, n := range counts {
			b[i] = n
		}
		return b
	}

	// The first attempts on a member make it a new caller, which the
	// control plane hears at once in an edge report without counters; the
	// counters go with the heartbeat.
	h.clk.WaitForTimers(2) // the heartbeat and the coalescing timer
	h.clk.Advance(coalesce)
	if edge := fs.report(t); edge.GetHeartbeat() || edge.GetSeq() != 2 || len(edge.GetMembers()[0].GetCalls()) != 0 {
		t.Errorf("edge report after the first calls: seq %d heartbeat %v calls %v; want seq 2, no heartbeat, no counters",
			edge.GetSeq(), edge.GetHeartbeat(), edge.GetMembers()[0].GetCalls())
	}
	h.clk.WaitForTimers(1)
	h.clk.Advance(DefaultHeartbeat - coalesce)
	want := wantReport(3, epoch.Add(DefaultHeartbeat), true)
	want.Members[0].Calls = map[string]uint64{"ok": 2, "timeout": 1}
	want.Members[0].LatencyBuckets = buckets(map[int]uint64{3: 2, 11: 1}) // ≤ 5 ms, ≤ 2.5 s
	want.Members[1].Calls = map[string]uint64{"connect_error": 1}
	want.Members[1].LatencyBuckets = buckets(map[int]uint64{0: 1}) // ≤ 0.5 ms
	if diff := cmp.Diff(want, fs.report(t), protocmp.Transform()); diff != "" {
		t.Errorf("first heartbeat (-want +got):\n%s", diff)
	}

	// Counters are per interval: an interval without calls reports none.
	h.clk.WaitForTimers(1)
	h.clk.Advance(DefaultHeartbeat)
	if diff := cmp.Diff(wantReport(4, epoch.Add(2*DefaultHeartbeat), true), fs.report(t), protocmp.Transform()); diff != "" {
		t.Errorf("second heartbeat (-want +got):\n%s", diff)
	}

	obs.Attempt("g", "my-mcp", "add", outcome.ToolError, time.Minute)
	h.clk.WaitForTimers(1)
	h.clk.Advance(DefaultHeartbeat)
	want = wantReport(5, epoch.Add(3*DefaultHeartbeat), true)
	want.Members[0].Calls = map[string]uint64{"tool_error": 1}
	want.Members[0].LatencyBuckets = buckets(map[int]uint64{len(latency.Bounds) - 1: 1}) // +Inf
	if diff := cmp.Diff(want, fs.report(t), protocmp.Transform()); diff != "" {
		t.Errorf("third heartbeat (-want +got):\n%s", diff)
	}
}
