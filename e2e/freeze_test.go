package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

// paced is open-loop traffic: one call of tool every 1/rate s, each in its
// own goroutine with a budget (hangar_call's per-call timeout), whatever
// the calls in flight do, as independent AI agents would send them.
type paced struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	recs []record
}

// startPaced starts paced traffic of tool on target until Stop.
func startPaced(t *testing.T, cs *mcp.ClientSession, target, tool string, rate int, budget time.Duration) *paced {
	p := &paced{stop: make(chan struct{})}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	p.wg.Go(func() {
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			p.wg.Go(func() { p.one(cs, target, tool, i, budget) })
		}
	})
	t.Cleanup(p.Stop)
	return p
}

func (p *paced) one(cs *mcp.ClientSession, target, tool string, i int, budget time.Duration) {
	args := map[string]any{"a": float64(i), "b": 1}
	if tool == "append" {
		args = map[string]any{"text": fmt.Sprint(i)}
	}
	r := record{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), budget+10*time.Second)
	b, err := hangarCall(ctx, cs, map[string]any{"calls": []map[string]any{{
		"mcp_server": target, "tool": tool, "arguments": args, "timeout": budget.Seconds()}}})
	cancel()
	r.end, r.err = time.Now(), err
	if err == nil && len(b.Results) == 1 {
		r.res = b.Results[0]
		if r.res.Success && tool == "add" {
			r.err = checkSum(r.res.Result, float64(i)+1)
		}
	} else if err == nil {
		r.err = fmt.Errorf("hangar_call returned %d results", len(b.Results))
	}
	p.mu.Lock()
	p.recs = append(p.recs, r)
	p.mu.Unlock()
}

// Stop stops the traffic and waits for the calls in flight.
func (p *paced) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *paced) records() []record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]record(nil), p.recs...)
}

// waitServed waits until n calls started after since were served by member.
func (p *paced) waitServed(t *testing.T, member string, since time.Time, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d calls served by %s", n, member), func() bool {
		return len(served(p.records(), member, since, time.Time{})) >= n
	})
}

// freeze stops the member's process with SIGSTOP; it is thawed at cleanup
// so that it can be killed and its port freed.
func freeze(t *testing.T, m *Math) {
	t.Helper()
	if err := m.proc.Freeze(); err != nil {
		t.Fatalf("freeze %s: %v", m.Name, err)
	}
	t.Cleanup(func() { _ = m.proc.Thaw() })
}

// failed returns the failed calls.
func failed(recs []record) []record {
	var out []record
	for _, r := range recs {
		if !r.ok() {
			out = append(out, r)
		}
	}
	return out
}

// p99Of returns the 99th percentile of the calls' durations.
func p99Of(recs []record) time.Duration {
	if len(recs) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(recs))
	for i, r := range recs {
		ds[i] = r.end.Sub(r.start)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[(len(ds)*99+99)/100-1]
}

// freezeFleet is recipe 04 with fast probes, a read timeout longer than the
// callers' budget, the seed's breaker and the default connect timeout (a
// loaded machine can take over a second to dial on loopback).
func freezeFleet(p, b *Math) string {
	return strings.ReplaceAll(priorityFleet(p, b, 30, ""), "connect_timeout: 1.0", "connect_timeout: 10.0")
}

// TestFrozenPrimaryCostsNoCall: one agent, its primary frozen (SIGSTOP)
// under 50 calls/s of a read-only tool. Attempts past the attempt timeout
// are cancelled and move to the backup: no call fails and the breaker
// never opens.
func TestFrozenPrimaryCostsNoCall(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	// The attempt timeout is set: the adaptive one (4 × p99) follows this
	// machine's latency, which a loaded CI host makes seconds long (the
	// unit tests cover it; make bench measures it with a 2 s budget).
	a := startAgent(t, writeConfig(t, freezeFleet(p, b)+"    failover: {attempt_timeout_s: 1}\n"))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)

	tr := startPaced(t, cs, group, "add", 50, 10*time.Second)
	tr.waitServed(t, primary, time.Time{}, 50) // a latency history
	frozen := time.Now()
	freeze(t, p)
	tr.waitServed(t, backup, frozen, 100)
	tr.Stop()

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls of a read-only tool failed with the backup idle: %s", f)
	}
	if strings.Contains(a.Logs(), "msg=circuit_opened") {
		t.Errorf("the breaker opened although the backup served")
	}
	during := served(recs, backup, frozen, time.Time{})
	t.Logf("%d calls, 0 failed; first call served by the backup %s after the freeze; p99 after the freeze %s",
		len(recs), during[0].end.Sub(frozen).Round(time.Millisecond), p99Of(during).Round(time.Millisecond))
}

// TestFrozenPrimaryNonRepeatableTool: the same with a tool not safe to
// repeat. The calls in flight on the frozen primary fail when their budget
// ends, but slow attempts count as timeouts as soon as they pass the
// adaptive attempt timeout, so the primary leaves rotation after
// unhealthy_threshold of them: failures ≤ calls in flight + 2, breaker closed.
func TestFrozenPrimaryNonRepeatableTool(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, freezeFleet(p, b)))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)

	tr := startPaced(t, cs, group, "append", 50, 2*time.Second)
	tr.waitServed(t, primary, time.Time{}, 50)
	frozen := time.Now()
	freeze(t, p)
	line := a.WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 30*time.Second)
	removed := cpLineTime(t, line)
	tr.waitServed(t, backup, frozen, 100)
	tr.Stop()

	recs := tr.records()
	bad := failed(recs)
	// The calls in flight: started before the primary left rotation and
	// not answered when it froze.
	inFlight := 0
	for _, r := range recs {
		if r.start.Before(removed) && r.end.After(frozen) {
			inFlight++
		}
	}
	if len(bad) > inFlight+2 {
		t.Errorf("%d calls failed; want at most the %d in flight + unhealthy_threshold (2): %s", len(bad), inFlight, failures(recs))
	}
	for _, r := range bad {
		if r.start.After(removed) {
			t.Errorf("a call started %s after the removal failed: %s", r.start.Sub(removed), deref(r.res.Error))
		}
	}
	if strings.Contains(a.Logs(), "msg=circuit_opened") {
		t.Errorf("the breaker opened although the backup served")
	}
	t.Logf("%d calls, %d failed (%d in flight at the removal %s after the freeze)",
		len(recs), len(bad), inFlight, removed.Sub(frozen).Round(time.Millisecond))
}

// TestCallerDeadlineIsNotEvidence: a tool that takes 3 s, called with a 1 s
// deadline: the caller's impatience ejects nothing and counts nothing
// against the group's breaker.
func TestCallerDeadlineIsNotEvidence(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 30, "")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)
	p.SetFaults(mathserver.Faults{Latency: 3 * time.Second})

	var wg sync.WaitGroup
	call := func(timeout float64) CallResult {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := hangarCall(ctx, cs, map[string]any{"calls": []map[string]any{{
			"mcp_server": group, "tool": "add", "arguments": map[string]any{"a": 1, "b": 2}, "timeout": timeout}}})
		if err != nil || len(b.Results) != 1 {
			t.Errorf("hangar_call: %+v, %v", b, err)
			return CallResult{}
		}
		return b.Results[0]
	}
	for range 10 { // the tool's usual latency: 3 s (10 answers make a history)
		wg.Go(func() {
			if r := call(10); !r.Success || r.Member != primary {
				t.Errorf("a 3 s call with a 10 s budget: %+v", r)
			}
		})
	}
	wg.Wait()
	for range 4 {
		wg.Go(func() {
			if r := call(1); r.Success || deref(r.ErrorType) != "TimeoutError" {
				t.Errorf("a 3 s call with a 1 s budget: %+v; want a TimeoutError", r)
			}
		})
	}
	wg.Wait()
	g := groupDetails(t, cs)
	if pm := g.member(primary); !pm.InRotation || pm.ConsecutiveFailures != 0 || g.Breaker != "closed" {
		t.Fatalf("after 4 impatient callers: primary in_rotation %v, consecutive_failures %d, breaker %s; want true, 0, closed",
			pm.InRotation, pm.ConsecutiveFailures, g.Breaker)
	}
	if strings.Contains(a.Logs(), "msg=member_removed_from_rotation") {
		t.Errorf("a caller's deadline ejected the member")
	}
}

// TestOneMemberGroupRestarts: a one-member group whose upstream restarts
// after 1.5 s under 10 calls/s. The breaker opens while it is down, then
// probes on a short backoff find it back and calls succeed again within
// seconds, not after reset_timeout_s (60 s).
func TestOneMemberGroupRestarts(t *testing.T) {
	skipShort(t)
	m := startMath(t, primary, "")
	fleet := "mcp_servers:\n" + remoteServer(primary, m, 5) + `  solo:
    mode: group
    strategy: priority
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 60}
    members: [{id: my-mcp}]
`
	a := startAgent(t, writeConfig(t, fleet))
	cs := a.Connect()
	waitReady(t, cs, primary)
	tr := startPaced(t, cs, "solo", "add", 10, 2*time.Second)
	tr.waitServed(t, primary, time.Time{}, 10)
	m.Kill()
	killed := time.Now()
	time.Sleep(1500 * time.Millisecond) // the outage the scenario is about, not a synchronisation
	m2 := m.Restart()
	restarted := time.Now()
	tr.waitServed(t, m2.Name, restarted, 10)
	tr.Stop()

	recs := tr.records()
	var firstOK time.Time
	for _, r := range served(recs, primary, restarted, time.Time{}) {
		if firstOK.IsZero() || r.end.Before(firstOK) {
			firstOK = r.end
		}
	}
	for _, r := range failed(recs) {
		if r.start.Before(killed.Add(-500*time.Millisecond)) || r.start.After(firstOK) {
			t.Errorf("a call at %s failed outside the outage (killed %s, served again %s)",
				r.start.Format("15:04:05.000"), killed.Format("15:04:05.000"), firstOK.Format("15:04:05.000"))
		}
	}
	if d := firstOK.Sub(restarted); d > 30*time.Second {
		t.Errorf("calls succeeded again %s after the restart; want well before reset_timeout_s (60 s)", d)
	}
	t.Logf("%d calls, %d failed during the outage; served again %s after the restart",
		len(recs), len(failed(recs)), firstOK.Sub(restarted).Round(time.Millisecond))
}

// TestReadinessFollowsGroups: /health/ready answers 503, naming the group,
// once no member of the only group can take a call; /health/live stays 200.
func TestReadinessFollowsGroups(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 1, "")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)
	if code, body := httpGet(t, "http://"+a.Addr+"/health/ready"); code != http.StatusOK {
		t.Fatalf("/health/ready with healthy members: %d %s", code, body)
	}
	freeze(t, p)
	freeze(t, b)
	var body string
	eventually(t, 60*time.Second, "/health/ready 503", func() bool {
		var code int
		code, body = httpGet(t, "http://"+a.Addr+"/health/ready")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, group) {
		t.Errorf("/health/ready body %s does not name the group", body)
	}
	if code, body := httpGet(t, "http://"+a.Addr+"/health/live"); code != http.StatusOK {
		t.Errorf("/health/live with frozen upstreams: %d %s", code, body)
	}
	t.Logf("/health/ready: %s", body)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}
