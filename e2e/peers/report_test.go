package peers

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/bench"
)

func TestTallyCountsFailuresAfterTheFault(t *testing.T) {
	at := time.Unix(100, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	calls := []sent{
		{start: at.Add(-ms(50)), end: at.Add(-ms(45))},                                          // before, ok
		{start: at.Add(-ms(5)), end: at.Add(ms(1995)), err: errors.New("in flight")},            // before, failed
		{start: at, end: at.Add(ms(10))},                                                        // after, ok
		{start: at.Add(ms(100)), end: at.Add(ms(2100)), session: 1, err: errors.New("timeout")}, // after, failed
	}
	var rep faultReport
	rep.tally(calls, at, 2)
	if rep.Sent != 4 || rep.Failed != 2 || rep.SentAfter != 2 || rep.FailedAfter != 1 {
		t.Errorf("sent %d failed %d, after: sent %d failed %d; want 4 2, 2 1", rep.Sent, rep.Failed, rep.SentAfter, rep.FailedAfter)
	}
	if rep.FailedAfterBySession[0] != 0 || rep.FailedAfterBySession[1] != 1 {
		t.Errorf("failed after by session = %v, want [0 1]", rep.FailedAfterBySession)
	}
	if rep.FirstError != "in flight" {
		t.Errorf("first error %q, want %q", rep.FirstError, "in flight")
	}
	if rep.LatencyAfter.Count != 2 || rep.LatencyAfter.MaxMs != 2000 {
		t.Errorf("latency after = %+v, want 2 calls, max 2000 ms", rep.LatencyAfter)
	}
}

func TestFillAddsLatencyBesideDirect(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	direct := bench.Latency{P50Ms: 1, P99Ms: 3}
	tg := &target{samples: []time.Duration{ms(2), ms(3), ms(9)}, calls: 300, elapsed: 2 * time.Second, errors: 1}
	var r row
	r.fill(tg, &direct)
	if r.AddedP50Ms == nil || *r.AddedP50Ms != 2 || *r.AddedP99Ms != 6 {
		t.Fatalf("added p50 %v p99 %v, want 2 and 6", r.AddedP50Ms, r.AddedP99Ms)
	}
	if r.CallsPerS != 150 || r.SatErrors != 1 {
		t.Errorf("calls/s %v errors %d, want 150 and 1", r.CallsPerS, r.SatErrors)
	}
	var d row
	d.fill(tg, nil)
	if d.AddedP50Ms != nil {
		t.Errorf("a direct row got an added p50: %v", *d.AddedP50Ms)
	}
}

func ptr(v float64) *float64 { return &v }

func sampleReport() *report {
	return &report{
		Direct: &row{Name: "direct", Front: "Streamable HTTP", Behind: "-", Sequential: bench.Latency{P50Ms: 1, P99Ms: 2}, CallsPerS: 900},
		Peers: []*row{
			{Name: "hangar", Front: "Streamable HTTP", Behind: "Streamable HTTP", Sequential: bench.Latency{P50Ms: 1.5, P99Ms: 3},
				AddedP50Ms: ptr(0.5), AddedP99Ms: ptr(1), CallsPerS: 800, Kill: &faultReport{Fault: faultKill, Sent: 600},
				Freeze: &faultReport{Fault: faultFreeze, Sent: 600, Failed: 3}, RSS: &bench.Memory{RSSKiB: 20 * 1024}},
			{Name: "nginx", Front: "Streamable HTTP", Behind: "HTTP", Sequential: bench.Latency{P50Ms: 1.2, P99Ms: 2.5},
				AddedP50Ms: ptr(0.2), AddedP99Ms: ptr(0.5), CallsPerS: 850, Kill: &faultReport{Sent: 600, Failed: 40}, RSS: &bench.Memory{RSSKiB: 10 * 1024}},
			{Name: "gw", Front: "Streamable HTTP", Behind: "stdio", Sequential: bench.Latency{P50Ms: 4, P99Ms: 9},
				AddedP50Ms: ptr(3), AddedP99Ms: ptr(7), CallsPerS: 300, Kill: &faultReport{Sent: 600, Failed: 400},
				Freeze: &faultReport{Sent: 600, Failed: 2}, RSS: &bench.Memory{RSSKiB: 100 * 1024}},
		},
	}
}

func TestMarkdownTable(t *testing.T) {
	var b bytes.Buffer
	sampleReport().markdown(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d lines, want header, rule and 4 rows:\n%s", len(lines), b.String())
	}
	want := map[int]string{
		2: "| direct | Streamable HTTP / - | 1.000 | 2.000 | - | - | 900 | - | - | - |",
		3: "| hangar | Streamable HTTP / Streamable HTTP | 1.500 | 3.000 | +0.500 | +1.000 | 800 | 0 of 600 | 3 of 600 | 20.0 |",
		4: "| nginx | Streamable HTTP / HTTP | 1.200 | 2.500 | +0.200 | +0.500 | 850 | 40 of 600 | n/a | 10.0 |",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], w)
		}
	}
	for _, l := range lines {
		if strings.Count(l, "|") != 11 {
			t.Errorf("row with %d cells, want 10: %s", strings.Count(l, "|")-1, l)
		}
	}
}

func TestCheckGoals(t *testing.T) {
	rep := sampleReport()
	rep.checkGoals()
	if len(rep.Goals) != 2 {
		t.Fatalf("goals = %+v, want the nginx ratio and one MCP peer", rep.Goals)
	}
	// 0.5 ms > 2 × 0.2 ms.
	if g := rep.Goals[0]; g.Met || !strings.Contains(g.Why, "0.500 ms vs 2 x 0.200 ms") {
		t.Errorf("nginx goal = %+v, want not met with the numbers", g)
	}
	// Ahead of gw on latency, calls/s, kill and RSS; behind on freeze (3 > 2).
	if g := rep.Goals[1]; g.Met || g.Why != "behind on failed on freeze" {
		t.Errorf("gw goal = %+v, want not met, behind on failed on freeze only", g)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-quick", "-n", "50", "-peers", "hangar, nginx"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Calls != 50 || o.Rounds != 2 || o.Duration != time.Second || len(o.Peers) != 2 || o.Peers[1] != "nginx" {
		t.Errorf("options = %+v", o)
	}
	if _, err := parseOptions([]string{"-peers", "envoy"}, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown peer "envoy"`) {
		t.Errorf("error = %v, want one naming the unknown peer", err)
	}
}
