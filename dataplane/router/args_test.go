package router

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// Arguments that do not match the member's inputSchema get -32602 from the
// agent: nothing is sent, nothing is counted, even with failure_threshold 1.
func TestArgumentsCheckedBeforeSent(t *testing.T) {
	primary, backup := newUpstream(t, "primary"), newUpstream(t, "backup")
	r, _ := startRouter(t, fleet(fleetfile.StrategyPriority, func(g *fleetfile.Group) {
		g.CircuitBreaker.FailureThreshold = 1
		g.Health.UnhealthyThreshold = 1
	}, primary, backup))
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"null arguments where some are required", func() error {
			_, err := r.Call(ctx, "grp", "add", json.RawMessage(`null`), CallOptions{})
			return err
		}},
		{"a string where a number is required", func() error {
			_, err := r.Call(ctx, "grp", "add", json.RawMessage(`{"a":"x","b":1}`), CallOptions{})
			return err
		}},
		{"a missing required argument", func() error {
			_, err := r.Call(ctx, "grp", "add", json.RawMessage(`{"a":1}`), CallOptions{})
			return err
		}},
		{"a member called directly", func() error {
			_, err := r.Call(ctx, "primary", "add", json.RawMessage(`null`), CallOptions{})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var rpcErr *jsonrpc.Error
			if TypeOf(err) != ErrCaller || !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("got %v; want %s carrying JSON-RPC -32602", err, ErrCaller)
			}
		})
	}
	if n := primary.calls() + backup.calls(); n != 0 {
		t.Errorf("%d calls with bad arguments reached a member", n)
	}
	st := groupState(r)
	if st.Breaker != "closed" || !st.Members[0].InRotation {
		t.Fatalf("bad arguments changed the group: breaker %s, primary in rotation %v", st.Breaker, st.Members[0].InRotation)
	}
	if res, err := call(t, r, "add"); err != nil || res.Member != "primary" {
		t.Fatalf("good arguments after bad ones: %+v, %v", res, err)
	}
	// null for a tool that needs no arguments is "no arguments".
	if res, err := r.Call(ctx, "grp", "whoami", json.RawMessage(`null`), CallOptions{}); err != nil || res.Member != "primary" {
		t.Fatalf("whoami with null arguments: %+v, %v; want it served", res, err)
	}
}
