package router

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

func TestMain(m *testing.M) {
	// Tests that stop an in-process upstream leave its server-side session
	// reader waiting for a DELETE that can no longer arrive: a goroutine of
	// the test fixture (the SDK's handler), not of the router.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/modelcontextprotocol/go-sdk/mcp.(*streamableServerConn).Read"))
}

// mathUpstream is an in-process mcp-math member.
type mathUpstream struct {
	srv  *mathserver.Server
	http *httptest.Server
}

func newUpstream(t *testing.T, name string) *mathUpstream {
	t.Helper()
	s := mathserver.New(mathserver.Options{Name: name, Seed: 1})
	h := httptest.NewServer(s.Handler())
	u := &mathUpstream{srv: s, http: h}
	t.Cleanup(func() { _ = s.Close(); h.Close() })
	return u
}

func (u *mathUpstream) url() string { return u.http.URL + "/mcp" }

func (u *mathUpstream) fail(t *testing.T, f mathserver.Faults) {
	t.Helper()
	if err := u.srv.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func (u *mathUpstream) calls() int64 { return u.srv.Stats().TotalCalls }

// fleet builds a fleet with one group over the given members.
func fleet(strategy fleetfile.Strategy, mod func(*fleetfile.Group), members ...*mathUpstream) *fleetfile.Fleet {
	f := &fleetfile.Fleet{Servers: map[string]*fleetfile.Server{}, Groups: map[string]*fleetfile.Group{}}
	g := &fleetfile.Group{
		ID: "grp", Strategy: strategy, MinHealthy: 1,
		Health:         fleetfile.GroupHealth{UnhealthyThreshold: 2, HealthyThreshold: 1, Quorum: 0.5, Probers: 2},
		CircuitBreaker: fleetfile.CircuitBreaker{FailureThreshold: 10, ResetTimeout: time.Minute, ProbeCount: 1},
		Failover:       fleetfile.Failover{MaxAttempts: 2},
	}
	for i, u := range members {
		id := u.srv.Name()
		f.Servers[id] = &fleetfile.Server{ID: id, Mode: fleetfile.ModeRemote, Endpoint: u.url(),
			HealthCheckInterval: 30 * time.Second, MaxConsecutiveFailures: 3,
			HTTP: fleetfile.HTTPConfig{ConnectTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}}
		f.Order = append(f.Order, id)
		g.Members = append(g.Members, fleetfile.Member{ID: id, Priority: i + 1, Weight: 1})
	}
	if mod != nil {
		mod(g)
	}
	f.Groups["grp"] = g
	f.Order = append(f.Order, "grp")
	return f
}

// startRouter runs a router on a fake clock; probes run once at start.
func startRouter(t *testing.T, f *fleetfile.Fleet) (*Router, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	r, err := New(f, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Every member's first probe has run when each probe loop waits on its timer.
	clk.WaitForTimers(len(f.Servers))
	return r, clk
}

func call(t *testing.T, r *Router, tool string) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := json.RawMessage(`{"a":2,"b":3}`)
	if tool == "whoami" {
		args = json.RawMessage(`{}`)
	}
	return r.Call(ctx, "grp", tool, args, CallOptions{})
}

func text(res *Result) string {
	var b strings.Builder
	for _, c := range res.Result.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func TestPriorityFailoverInsideTheCall(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, nil, primary, backup))

	res, err := call(t, r, "whoami")
	if err != nil || text(res) != "primary" {
		t.Fatalf("healthy group: got %v, %v; want primary to serve", res, err)
	}

	// The primary's tools start failing with -32603 while tools/list passes.
	primary.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	for i := range 2 {
		res, err := call(t, r, "whoami")
		if err != nil {
			t.Fatalf("call %d failed instead of failing over: %v", i, err)
		}
		if text(res) != "backup" || res.Attempts != 2 {
			t.Fatalf("call %d: served by %q after %d attempts; want backup after 2", i, text(res), res.Attempts)
		}
	}
	// unhealthy_threshold (2) counted failures took the primary out of
	// rotation: the next calls go straight to the backup.
	before := primary.calls()
	for range 5 {
		res, err := call(t, r, "add")
		if err != nil || res.Attempts != 1 || res.Member != "backup" {
			t.Fatalf("after ejection: %+v, %v; want backup on the first attempt", res, err)
		}
	}
	if got := primary.calls(); got != before {
		t.Errorf("the ejected primary received %d calls", got-before)
	}
	st, _ := r.GroupStatus("grp")
	if st.ActiveMember != "backup" || st.Members[0].InRotation {
		t.Errorf("status: active %q, primary in rotation %v; want backup active, primary out", st.ActiveMember, st.Members[0].InRotation)
	}
}

func TestFailbackAfterEjectionTime(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, clk := startRouter(t, fleet(fleetfile.StrategyPriority, nil, primary, backup))
	primary.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	for range 2 {
		if _, err := call(t, r, "add"); err != nil {
			t.Fatal(err)
		}
	}
	primary.fail(t, mathserver.Faults{}) // the primary recovers
	if res, _ := call(t, r, "whoami"); text(res) != "backup" {
		t.Fatalf("still ejected: got %q, want backup", text(res))
	}
	clk.Advance(6 * time.Second) // past the 5 s base ejection
	res, err := call(t, r, "whoami")
	if err != nil || text(res) != "primary" {
		t.Fatalf("after the ejection time: %q, %v; want the primary back (trial call)", text(res), err)
	}
	res, err = call(t, r, "whoami")
	if err != nil || text(res) != "primary" {
		t.Fatalf("after a passing trial: %q, %v; want the primary in rotation", text(res), err)
	}
}

func TestRetryOnlySafeTools(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	tests := []struct {
		name      string
		retryOn   []string
		wantError ErrorType
	}{
		{name: "non-idempotent tool is not repeated", wantError: ErrServer},
		{name: "failover.retry_on makes it repeatable", retryOn: []string{"append"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) { g.Failover.RetryOn = tt.retryOn }, primary, backup))
			primary.fail(t, mathserver.Faults{FailTools: []string{"append"}})
			defer primary.fail(t, mathserver.Faults{})
			backupBefore := backup.calls()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := r.Call(ctx, "grp", "append", json.RawMessage(`{"text":"x"}`), CallOptions{})
			if tt.wantError != "" {
				if TypeOf(err) != tt.wantError {
					t.Fatalf("got %v, %v; want error type %s", res, err, tt.wantError)
				}
				if backup.calls() != backupBefore {
					t.Errorf("a non-idempotent call was repeated on the backup")
				}
				return
			}
			if err != nil || res.Member != "backup" {
				t.Fatalf("got %+v, %v; want the backup to serve after failover", res, err)
			}
		})
	}
}

func TestConnectErrorAlwaysFailsOver(t *testing.T) {
	backup := newUpstream(t, "backup")
	f := fleet(fleetfile.StrategyPriority, nil, backup)
	// The primary's address refuses connections from the start (one failed
	// probe of three leaves it a candidate).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	f.Servers["primary"] = &fleetfile.Server{ID: "primary", Mode: fleetfile.ModeRemote, Endpoint: refused,
		HealthCheckInterval: 30 * time.Second, MaxConsecutiveFailures: 3,
		HTTP: fleetfile.HTTPConfig{ConnectTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}}
	g := f.Groups["grp"]
	g.Members = []fleetfile.Member{{ID: "primary", Priority: 1, Weight: 1}, {ID: "backup", Priority: 2, Weight: 1}}
	r, _ := startRouter(t, f)
	// append is not idempotent, but a refused connection never delivered it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.Call(ctx, "grp", "append", json.RawMessage(`{"text":"x"}`), CallOptions{})
	if err != nil || res.Member != "backup" || res.Attempts != 2 {
		t.Fatalf("got %+v, %v; want the backup on the second attempt after a connect error", res, err)
	}
}

func TestCallerErrorsNeverEject(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, nil, primary, backup))
	ctx := context.Background()
	for range 5 {
		// divide by zero is the tool's own error (isError), not a failure.
		res, err := r.Call(ctx, "grp", "divide", json.RawMessage(`{"a":1,"b":0}`), CallOptions{})
		if err != nil || !res.Result.IsError || res.Member != "primary" {
			t.Fatalf("divide by zero: %+v, %v; want an isError result from the primary", res, err)
		}
		// An unknown tool is the caller's error (-32602).
		if _, err := r.Call(ctx, "grp", "nosuchtool", nil, CallOptions{}); TypeOf(err) != ErrCaller {
			t.Fatalf("unknown tool: %v; want %s", err, ErrCaller)
		}
	}
	st, _ := r.GroupStatus("grp")
	if !st.Members[0].InRotation || st.Breaker != "closed" {
		t.Fatalf("caller errors changed the group: %+v", st)
	}
}

func TestBreakerOpensFailsFastAndCloses(t *testing.T) {
	only := newUpstream(t, "only")
	r, clk := startRouter(t, fleet(fleetfile.StrategyRoundRobin, func(g *fleetfile.Group) {
		g.CircuitBreaker = fleetfile.CircuitBreaker{FailureThreshold: 3, ResetTimeout: 30 * time.Second, ProbeCount: 1}
		g.Health.UnhealthyThreshold = 100 // keep rotation out of the way
	}, only))
	only.fail(t, mathserver.Faults{FailTools: []string{"*"}})
	for i := range 3 {
		if _, err := call(t, r, "add"); TypeOf(err) != ErrServer {
			t.Fatalf("call %d: %v; want a server error", i, err)
		}
	}
	before := only.calls()
	start := time.Now()
	_, err := call(t, r, "add")
	if TypeOf(err) != ErrCircuitOpen {
		t.Fatalf("after 3 failures: %v; want %s", err, ErrCircuitOpen)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("an open breaker took %s to reject; want fast fail", d)
	}
	if only.calls() != before {
		t.Errorf("an open breaker let a call through")
	}
	only.fail(t, mathserver.Faults{})
	clk.Advance(31 * time.Second) // HALF_OPEN: one probe call admitted
	if _, err := call(t, r, "add"); err != nil {
		t.Fatalf("half-open probe call: %v", err)
	}
	if st, _ := r.GroupStatus("grp"); st.Breaker != "closed" {
		t.Fatalf("breaker %s after a successful probe call; want closed", st.Breaker)
	}
}

func TestRoundRobinSpreadsAndSkipsStopped(t *testing.T) {
	a, b, c := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c")
	r, _ := startRouter(t, fleet(fleetfile.StrategyRoundRobin, nil, a, b, c))
	for range 30 {
		if _, err := call(t, r, "add"); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []*mathUpstream{a, b, c} {
		if n := u.calls(); n != 10 {
			t.Errorf("%s served %d of 30 calls; want 10", u.srv.Name(), n)
		}
	}
	c.http.Close()
	for i := range 30 {
		if _, err := call(t, r, "add"); err != nil {
			t.Fatalf("call %d with one member stopped: %v", i, err)
		}
	}
}

func TestNoAvailableMember(t *testing.T) {
	a := newUpstream(t, "a")
	f := fleet(fleetfile.StrategyPriority, nil, a)
	f.Servers["a"].MaxConsecutiveFailures = 1
	a.fail(t, mathserver.Faults{FailList: true}) // probes fail: DEGRADED at once
	r, _ := startRouter(t, f)
	_, err := call(t, r, "add")
	var ce *CallError
	if !errors.As(err, &ce) || ce.Type != ErrNoAvailableMember {
		t.Fatalf("got %v; want %s", err, ErrNoAvailableMember)
	}
}

func TestUnknownTarget(t *testing.T) {
	a := newUpstream(t, "a")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, nil, a))
	_, err := r.Call(context.Background(), "nope", "add", nil, CallOptions{})
	if TypeOf(err) != ErrUnknownServer || !strings.Contains(err.Error(), "hangar_list") {
		t.Fatalf("got %v; want %s naming hangar_list", err, ErrUnknownServer)
	}
}

func TestGlobalViewMerges(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, nil, primary, backup))
	// The control plane says the primary is out fleet-wide: this agent
	// moves before sending it a single call.
	r.SetGlobal(&Global{Version: 7, Rotation: map[string][]string{"grp": {"backup"}}})
	before := primary.calls()
	if res, err := call(t, r, "whoami"); err != nil || text(res) != "backup" {
		t.Fatalf("got %v, %v; want backup", res, err)
	}
	if primary.calls() != before {
		t.Fatalf("the globally ejected primary got a call")
	}
	// Drained members stay out even when in rotation.
	r.SetGlobal(&Global{Version: 8, Drained: map[string][]string{"grp": {"primary"}}})
	if res, _ := call(t, r, "whoami"); text(res) != "backup" {
		t.Fatalf("drained primary served")
	}
	r.SetGlobal(nil)
	if res, _ := call(t, r, "whoami"); text(res) != "primary" {
		t.Fatalf("standalone again: want the primary")
	}
}

// A member whose probes the control plane moved to other agents is judged by
// the global view: this agent's stale DEGRADED verdict does not keep it out.
func TestUnprobedMemberFollowsGlobalView(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	f := fleet(fleetfile.StrategyPriority, nil, primary, backup)
	f.Servers["primary"].MaxConsecutiveFailures = 1
	primary.fail(t, mathserver.Faults{FailList: true}) // the first probe degrades it
	r, _ := startRouter(t, f)
	if res, _ := call(t, r, "whoami"); text(res) != "backup" {
		t.Fatalf("degraded primary served")
	}
	primary.fail(t, mathserver.Faults{}) // it recovers; other agents probe it now
	r.SetGlobal(&Global{Version: 3, Rotation: map[string][]string{"grp": {"primary", "backup"}}})
	r.AssignProbes([]string{"backup"})
	if res, err := call(t, r, "whoami"); err != nil || text(res) != "primary" {
		t.Fatalf("got %v, %v; want the primary, back in global rotation", res, err)
	}
}

// A breaker the control plane says is open fleet-wide opens here too, once
// per snapshot: it still half-opens after reset_timeout_s, so a recovered
// group closes again.
func TestGlobalBreakerOpensOncePerSnapshot(t *testing.T) {
	only := newUpstream(t, "only")
	r, clk := startRouter(t, fleet(fleetfile.StrategyRoundRobin, func(g *fleetfile.Group) {
		g.CircuitBreaker = fleetfile.CircuitBreaker{FailureThreshold: 3, ResetTimeout: 30 * time.Second, ProbeCount: 1}
	}, only))
	r.SetGlobal(&Global{Version: 9, BreakerOpen: map[string]bool{"grp": true}})
	if _, err := call(t, r, "add"); TypeOf(err) != ErrCircuitOpen {
		t.Fatalf("got %v; want %s from the fleet-wide breaker", err, ErrCircuitOpen)
	}
	clk.Advance(31 * time.Second)
	if _, err := call(t, r, "add"); err != nil {
		t.Fatalf("after reset_timeout_s the half-open probe call must run: %v", err)
	}
	if st, _ := r.GroupStatus("grp"); st.Breaker != "closed" {
		t.Fatalf("breaker %s; want closed after a passing probe call", st.Breaker)
	}
}
