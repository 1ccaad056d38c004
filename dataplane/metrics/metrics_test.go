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
	a.Call("g", "add", outcome.OK, "", 0)
	a.Call("g", "add", outcome.ConnectError, router.ErrConnect, 0)
	a.Call("g", "add", outcome.CallerError, router.ErrCircuitOpen, 0)
	a.Call("g", "add", outcome.CallerError, router.ErrCircuitOpen, 0)
	if got := testutil.ToFloat64(a.rejections.WithLabelValues("g")); got != 2 {
		t.Errorf("mcp_hangar_batch_circuit_breaker_rejections_total{mcp_server=g} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(a.toolCalls.WithLabelValues("g", "add", "error")); got != 3 {
		t.Errorf("tool_calls_total{status=error} = %v, want 3", got)
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
