package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

// The failover scenarios of the cookbook recipes 02–05 and of the blog post,
// with real processes: members are killed with SIGKILL, hung or made to fail
// through mcp-math's admin API while a client keeps calling the agent.
//
// Timings are shortened (probes every 0.3 s, breaker reset 1 s); the local
// rotation's ejection time (5 s) is fixed, so scenarios that need a member
// back in rotation take about that long.

// ejection is how long a member stays out of local rotation after its first
// ejection (the agent's fixed base ejection time). Checks that an ejected
// member receives no calls hold only within it.
const ejection = 5 * time.Second

const (
	group   = "my-mcp-group"
	primary = "my-mcp"
	backup  = "my-mcp-backup"
)

// remoteServer is a fleet-file entry for a remote member, probed every 0.3 s.
func remoteServer(id string, m *Math, readTimeout float64) string {
	return fmt.Sprintf(`  %s:
    mode: remote
    endpoint: %s
    health_check_interval_s: 0.3
    max_consecutive_failures: 3
    http: {connect_timeout: 1.0, read_timeout: %g}
`, id, m.URL(), readTimeout)
}

// priorityFleet is recipe 04: my-mcp (priority 1) with my-mcp-backup
// (priority 2) in a priority group. extra is more group keys.
func priorityFleet(p, b *Math, readTimeout float64, extra string) string {
	return "mcp_servers:\n" + remoteServer(primary, p, readTimeout) + remoteServer(backup, b, 5) + `  my-mcp-group:
    mode: group
    strategy: priority
    min_healthy: 1
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
    members: [{id: my-mcp, priority: 1}, {id: my-mcp-backup, priority: 2}]
` + extra
}

// groupView is hangar_details of a group.
type groupView struct {
	ID      string       `json:"group_id"`
	State   string       `json:"state"`
	Breaker string       `json:"circuit_breaker_state"`
	Active  string       `json:"active_member"`
	Members []memberView `json:"members"`
}

// memberView is one member in hangar_details of a group.
type memberView struct {
	ID                  string `json:"id"`
	State               string `json:"state"`
	InRotation          bool   `json:"in_rotation"`
	Rotation            string `json:"rotation"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
}

// member returns the view of member id (zero if absent).
func (g groupView) member(id string) memberView {
	for _, m := range g.Members {
		if m.ID == id {
			return m
		}
	}
	return memberView{}
}

func details(t *testing.T, cs *mcp.ClientSession, id string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := toolJSON(ctx, cs, "hangar_details", map[string]any{"mcp_server": id}, out); err != nil {
		t.Fatalf("hangar_details %s: %v", id, err)
	}
}

func groupDetails(t *testing.T, cs *mcp.ClientSession) groupView {
	t.Helper()
	var g groupView
	details(t, cs, group, &g)
	return g
}

func serverState(t *testing.T, cs *mcp.ClientSession, id string) string {
	t.Helper()
	var s struct {
		State string `json:"state"`
	}
	details(t, cs, id, &s)
	return s.State
}

// waitReady waits until every server in ids is READY.
func waitReady(t *testing.T, cs *mcp.ClientSession, ids ...string) {
	t.Helper()
	for _, id := range ids {
		eventually(t, 10*time.Second, id+" ready", func() bool { return serverState(t, cs, id) == "ready" })
	}
}

// record is one call made by traffic.
type record struct {
	start, end time.Time
	res        CallResult
	err        error // hangar_call itself failed, or the answer was wrong
}

func (r record) ok() bool { return r.err == nil && r.res.Success }

// traffic is a steady stream of add calls to a target through hangar_call,
// from several concurrent callers, as an AI agent would send them.
type traffic struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	recs []record
}

// startTraffic starts callers goroutines that call add on target, each
// pausing pause between calls, until Stop. Calls are never cancelled: Stop
// waits for the calls in flight.
func startTraffic(t *testing.T, cs *mcp.ClientSession, target string, callers int, pause time.Duration) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for c := range callers {
		tr.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				a := float64(c*1_000_000 + i)
				r := record{start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r.res, r.err = callOne(ctx, cs, target, "add", map[string]any{"a": a, "b": 1})
				cancel()
				r.end = time.Now()
				if r.err == nil && r.res.Success {
					r.err = checkSum(r.res.Result, a+1)
				}
				tr.mu.Lock()
				tr.recs = append(tr.recs, r)
				tr.mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	t.Cleanup(tr.Stop)
	return tr
}

// checkSum checks that an add result carries want.
func checkSum(raw json.RawMessage, want float64) error {
	var res struct {
		Structured struct {
			Result float64 `json:"result"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("decode add result %s: %w", raw, err)
	}
	if res.Structured.Result != want {
		return fmt.Errorf("add returned %v, want %v", res.Structured.Result, want)
	}
	return nil
}

// Stop stops the callers and returns every call made. It may be called more
// than once.
func (tr *traffic) Stop() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

// records returns the calls finished so far.
func (tr *traffic) records() []record {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]record(nil), tr.recs...)
}

// waitCalls waits until n calls that started after since were served by member.
func (tr *traffic) waitCalls(t *testing.T, member string, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d calls served by %s", n, member), func() bool {
		return len(served(tr.records(), member, since, time.Time{})) >= n
	})
}

// served returns the successful calls served by member that started in
// [from, to) (a zero to means no end).
func served(recs []record, member string, from, to time.Time) []record {
	var out []record
	for _, r := range recs {
		if r.ok() && r.res.Member == member && !r.start.Before(from) && (to.IsZero() || r.start.Before(to)) {
			out = append(out, r)
		}
	}
	return out
}

// failures describes the failed calls, or returns "" if there are none.
func failures(recs []record) string {
	var b strings.Builder
	n := 0
	for _, r := range recs {
		if r.ok() {
			continue
		}
		n++
		if n <= 5 {
			switch {
			case r.err != nil:
				fmt.Fprintf(&b, "\n  %s: %v", r.start.Format("15:04:05.000"), r.err)
			default:
				fmt.Fprintf(&b, "\n  %s: %s %s", r.start.Format("15:04:05.000"), deref(r.res.ErrorType), deref(r.res.Error))
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d calls failed:%s", n, len(recs), b.String())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// failedOver counts the calls that needed more than one attempt.
func failedOver(recs []record) int {
	n := 0
	for _, r := range recs {
		if r.res.Attempts > 1 {
			n++
		}
	}
	return n
}

// requireWithinEjection stops the test if the member ejected at removed may
// already be back on probation, where the checks that follow do not hold.
func requireWithinEjection(t *testing.T, removed time.Time) {
	t.Helper()
	if d := time.Since(removed); d > ejection-500*time.Millisecond {
		t.Fatalf("the scenario took %s after the ejection, too close to the %s ejection time to check it", d, ejection)
	}
}

func addCalls(st mathserver.Stats) int64 { return st.Calls["add"] }

// probations counts the times the agent put member on probation (a trial
// call allowed) so far.
func probations(a *Agent, member string) int {
	return strings.Count(a.Logs(), "msg=member_on_probation group="+group+" member="+member+" ")
}

// retriedAfter counts the calls started after t that took more than one attempt.
func retriedAfter(recs []record, t time.Time) int {
	n := 0
	for _, r := range recs {
		if r.start.After(t) && r.res.Attempts > 1 {
			n++
		}
	}
	return n
}

// logIndex returns the offset of the first agent log line matching re, or -1.
func logIndex(a *Agent, re string) int {
	loc := regexp.MustCompile(re).FindStringIndex(a.Logs())
	if loc == nil {
		return -1
	}
	return loc[0]
}

// TestHealthCheckDegradedAndRecovered is recipe 02: a killed server goes
// DEGRADED after max_consecutive_failures (3) failed probes and is READY
// again once it restarts on the same port.
func TestHealthCheckDegradedAndRecovered(t *testing.T) {
	skipShort(t)
	m := startMath(t, primary, "")
	a := startAgent(t, writeConfig(t, "mcp_servers:\n"+remoteServer(primary, m, 5)))
	cs := a.Connect()
	waitReady(t, cs, primary)

	m.Kill()
	a.WaitLog(`msg=health_check_failed mcp_server=my-mcp consecutive_failures=3\b`, 10*time.Second)
	line := a.WaitLog(`msg=mcp_server_degraded mcp_server=my-mcp`, 5*time.Second)
	if !strings.Contains(line, "consecutive_failures=3") {
		t.Errorf("degraded after a number of failed probes other than 3: %s", line)
	}
	if i, j := logIndex(a, `msg=mcp_server_degraded`), logIndex(a, `consecutive_failures=3\b`); i < j {
		t.Errorf("mcp_server_degraded logged before the third failed probe:\n%s", a.Logs())
	}
	if got := serverState(t, cs, primary); got != "degraded" {
		t.Errorf("hangar_details state after 3 failed probes = %q, want degraded", got)
	}

	m.Restart()
	a.WaitLog(`msg=mcp_server_recovered mcp_server=my-mcp`, 10*time.Second)
	if got := serverState(t, cs, primary); got != "ready" {
		t.Errorf("hangar_details state after the restart = %q, want ready", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := callOne(ctx, cs, primary, "add", map[string]any{"a": 2, "b": 40})
	if err != nil || !res.Success {
		t.Fatalf("call after recovery: %+v, %v", res, err)
	}
	if err := checkSum(res.Result, 42); err != nil {
		t.Error(err)
	}
}

// TestCircuitBreakerOpensAndCloses is recipe 03: three failed group calls
// open the breaker; while OPEN calls fail fast with CircuitOpen and never
// reach the member; after reset_timeout_s it is HALF_OPEN, a failing trial
// reopens it and a passing one closes it.
func TestCircuitBreakerOpensAndCloses(t *testing.T) {
	skipShort(t)
	m := startMath(t, primary, "")
	a := startAgent(t, writeConfig(t, "mcp_servers:\n"+remoteServer(primary, m, 5)+`  my-mcp-group:
    mode: group
    strategy: round_robin
    min_healthy: 1
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 1}
    members: [{id: my-mcp}]
`))
	cs := a.Connect()
	waitReady(t, cs, primary)
	m.SetFaults(mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailMode: mathserver.FailRPC})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := func() CallResult {
		t.Helper()
		res, err := callOne(ctx, cs, group, "add", map[string]any{"a": 1, "b": 2})
		if err != nil {
			t.Fatalf("hangar_call: %v", err)
		}
		return res
	}
	wantType := func(res CallResult, want string) {
		t.Helper()
		if res.Success || deref(res.ErrorType) != want {
			t.Fatalf("call = success %v, error_type %q (%s), want error_type %s",
				res.Success, deref(res.ErrorType), deref(res.Error), want)
		}
	}

	for i := range 3 {
		if g := groupDetails(t, cs); g.Breaker != "closed" {
			t.Fatalf("breaker %q after %d failed calls, want closed", g.Breaker, i)
		}
		wantType(call(), "ServerError")
	}
	a.WaitLog(`msg=circuit_opened group=my-mcp-group`, 5*time.Second)
	if g := groupDetails(t, cs); g.Breaker != "open" || g.State != "degraded" {
		t.Errorf("after 3 failed calls: breaker %q, group state %q; want open, degraded", g.Breaker, g.State)
	}

	before := m.Stats().TotalCalls
	for range 5 {
		wantType(call(), "CircuitOpen")
	}
	if after := m.Stats().TotalCalls; after != before {
		t.Errorf("calls rejected by the open breaker reached the member: %d calls served, want %d", after, before)
	}

	// HALF_OPEN after reset_timeout_s; the trial still fails: OPEN again.
	eventually(t, 5*time.Second, "breaker half_open", func() bool { return groupDetails(t, cs).Breaker == "half_open" })
	wantType(call(), "ServerError")
	if got := m.Stats().TotalCalls; got != before+1 {
		t.Errorf("the half-open trial call: member served %d calls, want %d", got, before+1)
	}
	a.WaitLog(`msg=circuit_opened group=my-mcp-group from=half_open`, 5*time.Second)
	wantType(call(), "CircuitOpen")

	// The fault is fixed: the next trial passes and closes the breaker.
	m.SetFaults(mathserver.Faults{})
	eventually(t, 5*time.Second, "breaker half_open again", func() bool { return groupDetails(t, cs).Breaker == "half_open" })
	if res := call(); !res.Success {
		t.Fatalf("trial call after the fix failed: %s %s", deref(res.ErrorType), deref(res.Error))
	}
	a.WaitLog(`msg=circuit_closed group=my-mcp-group from=half_open`, 5*time.Second)
	if g := groupDetails(t, cs); g.Breaker != "closed" {
		t.Errorf("breaker %q after a passing trial, want closed", g.Breaker)
	}
	for range 3 {
		if res := call(); !res.Success {
			t.Fatalf("call with the breaker closed: %s %s", deref(res.ErrorType), deref(res.Error))
		}
	}
}

// TestPriorityFailoverUnderLoad is recipe 04, the headline: the primary is
// killed with SIGKILL under steady traffic and no call fails; the backup
// serves while the primary is dead (and DEGRADED), and traffic fails back to
// the primary once it is restarted.
func TestPriorityFailoverUnderLoad(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 5, "")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)

	begin := time.Now()
	tr := startTraffic(t, cs, group, 3, 10*time.Millisecond)
	tr.waitCalls(t, primary, begin, 60, 20*time.Second)
	if got := addCalls(b.Stats()); got != 0 {
		t.Errorf("the backup served %d calls while the primary was up, want 0", got)
	}

	killed := time.Now()
	p.Kill()
	tr.waitCalls(t, backup, killed, 60, 20*time.Second)
	a.WaitLog(`msg=failover group=my-mcp-group from=my-mcp to=my-mcp-backup`, 5*time.Second)
	a.WaitLog(`msg=mcp_server_degraded mcp_server=my-mcp`, 10*time.Second)

	restarted := time.Now()
	p = p.Restart()
	a.WaitLog(`msg=failback group=my-mcp-group from=my-mcp-backup to=my-mcp`, 20*time.Second)
	tr.waitCalls(t, primary, restarted, 60, 20*time.Second)
	tr.Stop()
	end := time.Now()

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls failed across the kill and the failback: %s", f)
	}
	// While the primary was dead every call landed on the backup.
	for _, r := range recs {
		if r.start.After(killed) && r.end.Before(restarted) && r.res.Member != backup {
			t.Errorf("call at %s (while the primary was dead) served by %q, want %s",
				r.start.Format("15:04:05.000"), r.res.Member, backup)
		}
	}
	// Each member counted exactly the calls it was reported to serve: no
	// call ran twice, none was lost.
	if got, want := addCalls(b.Stats()), len(served(recs, backup, begin, time.Time{})); got != int64(want) {
		t.Errorf("backup counted %d add calls, want the %d it served", got, want)
	}
	back := served(recs, primary, restarted, time.Time{})
	if got := addCalls(p.Stats()); got != int64(len(back)) || len(back) == 0 {
		t.Errorf("restarted primary counted %d add calls, want the %d (> 0) it served", got, len(back))
	}
	for _, r := range recs[len(recs)-10:] {
		if r.res.Member != primary {
			t.Errorf("call at %s after the failback served by %q, want %s", r.start.Format("15:04:05.000"), r.res.Member, primary)
		}
	}

	logFailoverNumbers(t, recs, begin, killed, restarted, end)
}

// logFailoverNumbers logs what a user would ask about a failover: calls
// sent and failed, how fast traffic moved to the backup and back.
func logFailoverNumbers(t *testing.T, recs []record, begin, killed, restarted, end time.Time) {
	var lastPrimary, firstBackup, firstBack time.Time
	var slowest time.Duration
	for _, r := range recs {
		switch {
		case r.res.Member == primary && r.end.Before(restarted) && r.end.After(lastPrimary):
			lastPrimary = r.end
		case r.res.Member == backup && (firstBackup.IsZero() || r.end.Before(firstBackup)):
			firstBackup = r.end
		case r.res.Member == primary && r.start.After(restarted) && (firstBack.IsZero() || r.end.Before(firstBack)):
			firstBack = r.end
		}
		if d := r.end.Sub(r.start); r.start.Before(killed.Add(time.Second)) && r.end.After(killed) && d > slowest {
			slowest = d
		}
	}
	failed := len(recs) - len(served(recs, primary, begin, end)) - len(served(recs, backup, begin, end))
	t.Logf("calls: %d sent, %d failed, %d failed over inside the call, over %s",
		len(recs), failed, failedOver(recs), end.Sub(begin).Round(time.Millisecond))
	t.Logf("kill → last call served by the primary: %s; kill → first call served by the backup: %s; slowest call in the second after the kill: %s",
		lastPrimary.Sub(killed).Round(time.Microsecond), firstBackup.Sub(killed).Round(time.Microsecond), slowest.Round(time.Microsecond))
	t.Logf("primary dead for %s; restart → first call served by the primary again (failback): %s; calls served by primary/backup: %d/%d",
		restarted.Sub(killed).Round(time.Millisecond), firstBack.Sub(restarted).Round(time.Millisecond),
		len(served(recs, primary, begin, end)), len(served(recs, backup, begin, end)))
}

// TestRoundRobinSpreadsAndSkipsStoppedMember is recipe 05: three members
// share the calls evenly; a stopped member is skipped and no call fails.
func TestRoundRobinSpreadsAndSkipsStoppedMember(t *testing.T) {
	skipShort(t)
	ids := []string{"my-mcp", "my-mcp-backup", "my-mcp-3"}
	var ms []*Math
	fleet := "mcp_servers:\n"
	for _, id := range ids {
		m := startMath(t, id, "")
		ms = append(ms, m)
		fleet += remoteServer(id, m, 5)
	}
	fleet += `  my-mcp-group:
    mode: group
    strategy: round_robin
    min_healthy: 1
    members: [{id: my-mcp, weight: 1}, {id: my-mcp-backup, weight: 1}, {id: my-mcp-3, weight: 1}]
`
	a := startAgent(t, writeConfig(t, fleet))
	cs := a.Connect()
	waitReady(t, cs, ids...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 90
	for i := range n {
		res, err := callOne(ctx, cs, group, "add", map[string]any{"a": i, "b": 1})
		if err != nil || !res.Success {
			t.Fatalf("call %d: %+v, %v", i, res, err)
		}
	}
	for _, m := range ms {
		if got := addCalls(m.Stats()); got < n/3-n/10 || got > n/3+n/10 {
			t.Errorf("%s served %d of %d calls, want about a third (%d)", m.Name, got, n, n/3)
		}
	}

	before := map[string]int64{}
	for _, m := range ms[:2] {
		before[m.Name] = addCalls(m.Stats())
	}
	tr := startTraffic(t, cs, group, 2, 10*time.Millisecond)
	tr.waitCalls(t, ids[2], time.Now(), 10, 10*time.Second)
	killed := time.Now()
	ms[2].Kill()
	a.WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp-3`, 10*time.Second)
	removed := time.Now()
	tr.waitCalls(t, ids[0], removed, 30, 10*time.Second)
	tr.waitCalls(t, ids[1], removed, 30, 10*time.Second)
	tr.Stop()

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls failed while my-mcp-3 was stopped: %s", f)
	}
	after := 0
	for _, r := range recs {
		if !r.start.After(removed) {
			continue
		}
		after++
		if r.res.Member == ids[2] || r.res.Attempts != 1 {
			t.Errorf("call at %s after my-mcp-3 left rotation: served by %s in %d attempts, want a survivor in 1",
				r.start.Format("15:04:05.000"), r.res.Member, r.res.Attempts)
		}
	}
	var grown int64
	for _, m := range ms[:2] {
		d := addCalls(m.Stats()) - before[m.Name]
		grown += d
		if n := len(served(recs, m.Name, removed, time.Time{})); n < after/3 {
			t.Errorf("%s served %d of the %d calls after my-mcp-3 left, want about half", m.Name, n, after)
		}
	}
	if want := len(served(recs, ids[0], time.Time{}, time.Time{})) + len(served(recs, ids[1], time.Time{}, time.Time{})); grown != int64(want) {
		t.Errorf("survivors counted %d add calls, want the %d they served", grown, want)
	}
	t.Logf("%d calls while my-mcp-3 was stopped (killed %s before it left rotation), %d failed over inside the call",
		len(recs), removed.Sub(killed).Round(time.Millisecond), failedOver(recs))
}

// TestFlakyPrimaryLeavesRotation is the blog's case: the primary's tools/list
// passes but 80 % of its calls fail with -32603. The member leaves rotation
// after unhealthy_threshold counted failures, the backup serves, and no
// call of a read-only tool fails.
func TestFlakyPrimaryLeavesRotation(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 5, "    health: {unhealthy_threshold: 3}\n")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)
	p.SetFaults(mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailRate: 0.8, FailMode: mathserver.FailRPC})

	tr := startTraffic(t, cs, group, 1, 5*time.Millisecond)
	line := a.WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second)
	if !strings.Contains(line, "consecutive_failures=3") {
		t.Errorf("removed after a number of failures other than unhealthy_threshold (3): %s", line)
	}
	removed := time.Now()
	primaryAtRemoval := p.Stats()
	tr.waitCalls(t, backup, removed, 50, 3*time.Second)
	tr.Stop()
	g := groupDetails(t, cs)
	primaryNow := p.Stats()
	requireWithinEjection(t, removed)

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls failed although the backup was healthy: %s", f)
	}
	if primaryAtRemoval.FailedCalls < 3 {
		t.Errorf("the primary failed %d calls before it left rotation, want >= 3", primaryAtRemoval.FailedCalls)
	}
	// Its probes pass (tools/list answers), so it is re-tested by single
	// trial calls on probation, and nothing else.
	trials := probations(a, primary)
	if extra := primaryNow.TotalCalls - primaryAtRemoval.TotalCalls; extra > int64(trials) {
		t.Errorf("the primary received %d calls after it left rotation, want at most its %d trial calls", extra, trials)
	}
	if n := retriedAfter(recs, removed); n > trials {
		t.Errorf("%d calls after the removal took 2 attempts, want at most the %d trial calls", n, trials)
	}
	if pm := g.member(primary); pm.State != "ready" || pm.InRotation {
		t.Errorf("primary: state %q, in_rotation %v; want ready (its probes pass), false", pm.State, pm.InRotation)
	}
	if g.Active != backup || g.Breaker != "closed" {
		t.Errorf("group: active member %q, breaker %q; want %s, closed", g.Active, g.Breaker, backup)
	}
}

// TestCallerErrorsNeverEject: tool errors (divide by zero) and unknown tools
// are the caller's problem: the member stays in rotation, the breaker stays
// closed and the calls are not failed over.
func TestCallerErrorsNeverEject(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 5, "")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)

	const n = 10 // well past unhealthy_threshold (2) and failure_threshold (3)
	var calls []map[string]any
	for range n {
		calls = append(calls,
			map[string]any{"mcp_server": group, "tool": "divide", "arguments": map[string]any{"a": 1, "b": 0}},
			map[string]any{"mcp_server": group, "tool": "no_such_tool", "arguments": map[string]any{}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := hangarCall(ctx, cs, map[string]any{"calls": calls, "max_concurrency": 1})
	if err != nil {
		t.Fatal(err)
	}
	if batch.Failed != 2*n || len(batch.Results) != 2*n {
		t.Fatalf("batch: %d results, %d failed; want %d failed", len(batch.Results), batch.Failed, 2*n)
	}
	for i, r := range batch.Results {
		want := "ToolError"
		if i%2 == 1 {
			want = "InvalidRequestError"
		}
		if r.Success || deref(r.ErrorType) != want {
			t.Errorf("call %d (%s): success %v, error_type %q (%s); want %s",
				i, calls[i]["tool"], r.Success, deref(r.ErrorType), deref(r.Error), want)
		}
		if want == "ToolError" && (r.Member != primary || r.Attempts != 1) {
			t.Errorf("call %d: served by %q in %d attempts, want %s in 1 (no failover)", i, r.Member, r.Attempts, primary)
		}
	}

	g := groupDetails(t, cs)
	if pm := g.member(primary); !pm.InRotation || pm.Rotation != "in" || pm.ConsecutiveFailures != 0 {
		t.Errorf("primary after caller errors: in_rotation %v, rotation %q, consecutive_failures %d; want true, in, 0",
			pm.InRotation, pm.Rotation, pm.ConsecutiveFailures)
	}
	if g.Breaker != "closed" || g.State != "healthy" {
		t.Errorf("group after caller errors: breaker %q, state %q; want closed, healthy", g.Breaker, g.State)
	}
	if st := p.Stats(); st.Calls["divide"] != n {
		t.Errorf("primary served %d divide calls, want %d", st.Calls["divide"], n)
	}
	if st := b.Stats(); st.TotalCalls != 0 {
		t.Errorf("backup received %d calls, want 0 (caller errors are not failed over)", st.TotalCalls)
	}
	for _, ev := range []string{"member_removed_from_rotation", "circuit_opened", "failover"} {
		if logIndex(a, `msg=`+ev+`\b`) >= 0 {
			t.Errorf("agent logged %s after caller errors only:\n%s", ev, a.Logs())
		}
	}
	res, err := callOne(ctx, cs, group, "add", map[string]any{"a": 2, "b": 40})
	if err != nil || !res.Success || res.Member != primary {
		t.Fatalf("add after the caller errors: %+v, %v; want success on %s", res, err, primary)
	}
}

// TestHungPrimaryTimesOutAndFailsOver: the primary accepts calls and never
// answers them (tools/list still answers). With http.read_timeout 1 s, calls
// of read-only tools time out on it and fail over to the backup, and the
// primary leaves rotation.
func TestHungPrimaryTimesOutAndFailsOver(t *testing.T) {
	skipShort(t)
	p := startMath(t, primary, "")
	b := startMath(t, backup, "")
	a := startAgent(t, writeConfig(t, priorityFleet(p, b, 1, "")))
	cs := a.Connect()
	waitReady(t, cs, primary, backup)
	p.SetFaults(mathserver.Faults{Hang: true})

	begin := time.Now()
	tr := startTraffic(t, cs, group, 2, 10*time.Millisecond)
	a.WaitLog(`msg=failover group=my-mcp-group from=my-mcp to=my-mcp-backup .*reason=timeout`, 10*time.Second)
	a.WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second)
	removed := time.Now()
	hungAtRemoval := addCalls(p.Stats())
	tr.waitCalls(t, backup, removed, 50, 3*time.Second)
	tr.Stop()
	pm := groupDetails(t, cs).member(primary)
	hungNow := addCalls(p.Stats())
	requireWithinEjection(t, removed)

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls failed although the backup was healthy: %s", f)
	}
	timedOut := 0
	for _, r := range recs {
		if r.res.Attempts > 1 {
			timedOut++
			if d := r.end.Sub(r.start); d < time.Second {
				t.Errorf("a failed-over call took %s, less than the 1 s read timeout (no latency history yet)", d)
			}
		}
	}
	// tools/list answers, so passing probes re-test the primary with
	// single trial calls on probation, and nothing else.
	trials := probations(a, primary)
	if timedOut == 0 || int64(timedOut) > hungAtRemoval+int64(trials) {
		t.Errorf("%d calls failed over after a timeout; the primary held %d, then had %d trial calls", timedOut, hungAtRemoval, trials)
	}
	if n := retriedAfter(recs, removed); n > trials {
		t.Errorf("%d calls after the removal took 2 attempts, want at most the %d trial calls", n, trials)
	}
	if hungNow-hungAtRemoval > int64(trials) {
		t.Errorf("the hung primary received %d calls after it left rotation, want at most its %d trial calls", hungNow-hungAtRemoval, trials)
	}
	if pm.State != "ready" || pm.InRotation {
		t.Errorf("hung primary: state %q, in_rotation %v; want ready (tools/list answers), false", pm.State, pm.InRotation)
	}
	t.Logf("%d calls in %s, %d timed out on the primary and failed over", len(recs), time.Since(begin).Round(time.Millisecond), timedOut)
}
