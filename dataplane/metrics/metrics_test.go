package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
)

func TestRejectionsCountOnlyCircuitOpen(t *testing.T) {
	a := New()
	a.Call(router.CallRecord{Target: "g", Group: "g", Member: "a", Tool: "add", Class: outcome.OK, Attempts: 1})
	a.Call(router.CallRecord{Target: "g", Group: "g", Member: "b", Tool: "add", Class: outcome.ConnectError, ErrType: router.ErrConnect, Attempts: 2})
	a.Call(router.CallRecord{Target: "g", Group: "g", Tool: "add", Class: outcome.ServerError, ErrType: router.ErrCircuitOpen})
	a.Call(router.CallRecord{Target: "g", Group: "g", Tool: "add", Class: outcome.ServerError, ErrType: router.ErrCircuitOpen})
	if got := testutil.ToFloat64(a.rejections.WithLabelValues("g")); got != 2 {
		t.Errorf("mcp_hangar_batch_circuit_breaker_rejections_total{mcp_server=g} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(a.toolCalls.WithLabelValues("", "g", "add", "error")); got != 2 {
		t.Errorf(`tool_calls_total{mcp_server="",group="g",status="error"} = %v, want 2 (no member took them)`, got)
	}
	if got := testutil.ToFloat64(a.toolCalls.WithLabelValues("b", "g", "add", "error")); got != 1 {
		t.Errorf(`tool_calls_total{mcp_server="b",group="g",status="error"} = %v, want 1`, got)
	}
	if got := testutil.ToFloat64(a.toolCalls.WithLabelValues("a", "g", "add", "success")); got != 1 {
		t.Errorf(`tool_calls_total{mcp_server="a",group="g",status="success"} = %v, want 1`, got)
	}
}

func TestBreakerGaugeIsOneHot(t *testing.T) {
	a := New()
	a.Breaker("g", breaker.Open)
	want := `
# HELP mcp_hangar_circuit_breaker_state Group circuit breaker state, one-hot over state (closed, open, half_open).
# TYPE mcp_hangar_circuit_breaker_state gauge
mcp_hangar_circuit_breaker_state{mcp_server="g",state="closed"} 0
mcp_hangar_circuit_breaker_state{mcp_server="g",state="half_open"} 0
mcp_hangar_circuit_breaker_state{mcp_server="g",state="open"} 1
`
	if err := testutil.CollectAndCompare(a.breakerState, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestBuildInfoIsExported(t *testing.T) {
	a := New()
	n, err := testutil.GatherAndCount(a.Registry, "mcp_hangar_build_info")
	if err != nil || n != 1 {
		t.Errorf("mcp_hangar_build_info: %d series, %v; want 1", n, err)
	}
}
