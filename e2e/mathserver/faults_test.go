package mathserver_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

var twoPlusForty = map[string]any{"a": 2, "b": 40}

func TestFailModeRPC(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(map[bool]string{false: "stateful", true: "stateless"}[stateless], func(t *testing.T) {
			f := start(t, mathserver.Options{Stateless: stateless})
			setFaults(t, f.srv, mathserver.Faults{FailTools: []string{"add"}, FailMode: mathserver.FailRPC})

			res, err := call(t.Context(), f.session, "add", twoPlusForty)
			if rpcCode(err) != jsonrpc.CodeInternalError {
				t.Fatalf("add = %+v, %v; want a JSON-RPC error -32603", res, err)
			}
			if _, err := f.session.ListTools(t.Context(), nil); err != nil {
				t.Errorf("tools/list while add fails: %v", err)
			}
			if res, err := call(t.Context(), f.session, "subtract", twoPlusForty); err != nil || res.IsError {
				t.Errorf("subtract while only add fails = %+v, %v; want a result", res, err)
			}
		})
	}
}

func TestFailModeTool(t *testing.T) {
	f := start(t, mathserver.Options{})
	setFaults(t, f.srv, mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailMode: mathserver.FailTool})
	for _, tool := range []string{"add", "whoami"} {
		res, err := call(t.Context(), f.session, tool, twoPlusForty)
		if err != nil {
			t.Fatalf("%s: %v, want an isError result", tool, err)
		}
		if !res.IsError {
			t.Errorf("%s: isError = false, want true (text %q)", tool, text(t, res))
		}
	}
}

func TestFailRateIsSeeded(t *testing.T) {
	const calls = 200
	run := func() []bool {
		f := start(t, mathserver.Options{Seed: 7})
		setFaults(t, f.srv, mathserver.Faults{FailTools: []string{"add"}, FailRate: 0.5})
		failed := make([]bool, calls)
		n := 0
		for i := range failed {
			_, err := call(t.Context(), f.session, "add", twoPlusForty)
			if err != nil && rpcCode(err) != jsonrpc.CodeInternalError {
				t.Fatalf("call %d: %v", i, err)
			}
			if failed[i] = err != nil; failed[i] {
				n++
			}
		}
		if n == 0 || n == calls {
			t.Errorf("%d of %d calls failed at rate 0.5, want some but not all", n, calls)
		}
		if got := f.srv.Stats().FailedCalls; got != int64(n) {
			t.Errorf("stats failed_calls = %d, want %d", got, n)
		}
		return failed
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("two servers with seed 7 failed different calls (-first +second):\n%s", diff)
	}
}

// waitCalls lists tools until srv has received n tools/call requests, so a
// test knows a call in another goroutine reached the server. Every listing
// must succeed, which is what a hung server's health checks see.
func waitCalls(t *testing.T, f *fixture, n int64) {
	t.Helper()
	for f.srv.Stats().TotalCalls < n {
		if _, err := f.session.ListTools(t.Context(), nil); err != nil {
			t.Fatalf("tools/list while calls hang: %v", err)
		}
	}
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

func callAsync(ctx context.Context, cs *mcp.ClientSession, tool string) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := call(ctx, cs, tool, twoPlusForty)
		ch <- callResult{res, err}
	}()
	return ch
}

func TestHangUntilClientGivesUp(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(map[bool]string{false: "stateful", true: "stateless"}[stateless], func(t *testing.T) {
			f := start(t, mathserver.Options{Stateless: stateless})
			setFaults(t, f.srv, mathserver.Faults{Hang: true})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := callAsync(ctx, f.session, "add")
			waitCalls(t, f, 1)
			if _, err := f.session.ListTools(t.Context(), nil); err != nil {
				t.Fatalf("tools/list during a hung call: %v", err)
			}
			select {
			case r := <-done:
				t.Fatalf("hung call answered: %+v, %v", r.res, r.err)
			default:
			}
			cancel()
			if r := <-done; !errors.Is(r.err, context.Canceled) {
				t.Errorf("hung call after cancel = %+v, %v; want context.Canceled", r.res, r.err)
			}
		})
	}
}

// The SDK deletes a session only once its calls have returned, and a
// client's notifications/cancelled is best effort: a DELETE must release
// the calls hung on its session, or the client closing it waits forever.
func TestHangEndsWithSessionDelete(t *testing.T) {
	f := start(t, mathserver.Options{})
	setFaults(t, f.srv, mathserver.Faults{Hang: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := callAsync(ctx, f.session, "add")
	waitCalls(t, f, 1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, f.url+mathserver.MCPPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Mcp-Session-Id", f.session.ID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE session during a hung call: %s, want 204", resp.Status)
	}
	cancel()
	<-done
}

func TestHangClearedAtRunTime(t *testing.T) {
	f := start(t, mathserver.Options{})
	setFaults(t, f.srv, mathserver.Faults{Hang: true})
	done := callAsync(t.Context(), f.session, "add")
	waitCalls(t, f, 1)
	setFaults(t, f.srv, mathserver.Faults{})
	r := <-done
	if r.err != nil || r.res.IsError || text(t, r.res) != "42" {
		t.Errorf("call released from hang = %+v, %v; want 42", r.res, r.err)
	}
}

func TestFailList(t *testing.T) {
	f := start(t, mathserver.Options{})
	setFaults(t, f.srv, mathserver.Faults{FailList: true})
	if _, err := f.session.ListTools(t.Context(), nil); rpcCode(err) != jsonrpc.CodeInternalError {
		t.Errorf("tools/list = %v, want a JSON-RPC error -32603", err)
	}
	setFaults(t, f.srv, mathserver.Faults{})
	if _, err := f.session.ListTools(t.Context(), nil); err != nil {
		t.Errorf("tools/list after clearing fail_list: %v", err)
	}
}

func TestLatency(t *testing.T) {
	f := start(t, mathserver.Options{})
	const latency = 30 * time.Millisecond
	setFaults(t, f.srv, mathserver.Faults{Latency: latency})
	began := time.Now()
	if _, err := call(t.Context(), f.session, "add", twoPlusForty); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < latency {
		t.Errorf("call took %v, want at least the injected %v", took, latency)
	}
}

func TestStats(t *testing.T) {
	f := start(t, mathserver.Options{Name: "counted"})
	f.srv.ResetStats()
	setFaults(t, f.srv, mathserver.Faults{FailTools: []string{"divide"}})
	for _, tool := range []string{"add", "add", "add", "divide", "whoami"} {
		call(t.Context(), f.session, tool, twoPlusForty) // divide fails by design
	}
	f.session.ListTools(t.Context(), nil)
	want := mathserver.Stats{
		Name:        "counted",
		Calls:       map[string]int64{"add": 3, "divide": 1, "whoami": 1},
		TotalCalls:  5,
		FailedCalls: 1,
		ListCalls:   1,
	}
	if diff := cmp.Diff(want, f.srv.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	admin := mathserver.NewAdminClient(f.url)
	got, err := admin.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /admin/stats (-want +got):\n%s", diff)
	}
	if err := admin.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	zero := mathserver.Stats{Name: "counted", Calls: map[string]int64{}}
	if diff := cmp.Diff(zero, f.srv.Stats()); diff != "" {
		t.Errorf("Stats after reset (-want +got):\n%s", diff)
	}
}

func TestSetFaultsRejectsInvalid(t *testing.T) {
	tests := map[string]mathserver.Faults{
		"unknown tool":     {FailTools: []string{"ad"}},
		"rate above 1":     {FailTools: []string{"add"}, FailRate: 1.5},
		"negative rate":    {FailTools: []string{"add"}, FailRate: -0.1},
		"unknown mode":     {FailTools: []string{"add"}, FailMode: "http"},
		"negative latency": {Latency: -time.Second},
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			srv := mathserver.New(mathserver.Options{})
			good := mathserver.Faults{FailTools: []string{"divide"}, FailRate: 0.5, FailMode: mathserver.FailTool}
			setFaults(t, srv, good)
			before := srv.Faults()
			if err := srv.SetFaults(bad); err == nil {
				t.Fatalf("SetFaults(%+v) = nil, want an error", bad)
			}
			if diff := cmp.Diff(before, srv.Faults()); diff != "" {
				t.Errorf("faults changed by a rejected SetFaults (-before +after):\n%s", diff)
			}
		})
	}
}

// The admin API must not be reachable under the MCP path.
func TestAdminNotUnderMCP(t *testing.T) {
	f := start(t, mathserver.Options{})
	for _, path := range []string{"/mcp/admin/faults", "/mcp/admin/stats"} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
}
