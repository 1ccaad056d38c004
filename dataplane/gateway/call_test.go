package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

const testFleet = `
mcp_servers:
  my-mcp: {mode: remote, endpoint: http://127.0.0.1:1/mcp}
  my-mcp-group:
    mode: group
    strategy: priority
    members: [{id: my-mcp}]
`

// newTestGateway builds a gateway over a fleet whose members are never
// contacted: parseCall only reads the configuration.
func newTestGateway(t *testing.T) *Gateway {
	t.Helper()
	fleet, err := fleetfile.Parse("test.yaml", []byte(testFleet), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(fleet, router.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return New(r, Options{})
}

// calls returns n valid calls as JSON.
func calls(n int) string {
	cs := make([]string, n)
	for i := range cs {
		cs[i] = `{"mcp_server":"my-mcp-group","tool":"add","arguments":{"a":1,"b":2}}`
	}
	return "[" + strings.Join(cs, ",") + "]"
}

func TestParseCall(t *testing.T) {
	one := calls(1)
	tests := []struct {
		name string
		raw  string
		// want lists the problems as "index.field" (just "field" for a
		// batch-level problem); empty means the batch is accepted.
		want []string
		// msg, if set, must appear in the first problem's message.
		msg string
	}{
		{name: "one call", raw: `{"calls":` + one + `}`},
		{name: "a server, not a group", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add"}]}`},
		{name: "100 calls", raw: `{"calls":` + calls(100) + `}`},
		{name: "limits at their bounds", raw: `{"calls":` + one + `,"max_concurrency":50,"timeout":300,"max_attempts":10,"fail_fast":true}`},
		{name: "lower bounds", raw: `{"calls":` + one + `,"max_concurrency":1,"timeout":1,"max_attempts":1}`},
		{name: "per-call timeout fraction", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","timeout":0.1}]}`},
		{name: "null arguments", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","arguments":null}]}`},
		{name: "no arguments at all", raw: ``, want: []string{"calls"}, msg: "at least one call"},
		{name: "empty calls", raw: `{"calls":[]}`, want: []string{"calls"}, msg: "at least one call"},
		{name: "101 calls", raw: `{"calls":` + calls(101) + `}`, want: []string{"calls"}, msg: "101 calls is more than the limit of 100"},
		{name: "101 calls and a bad limit", raw: `{"calls":` + calls(101) + `,"max_concurrency":0}`, want: []string{"calls", "max_concurrency"}},
		{name: "max_concurrency 0", raw: `{"calls":` + one + `,"max_concurrency":0}`, want: []string{"max_concurrency"}, msg: "between 1 and 50, got 0"},
		{name: "max_concurrency 51", raw: `{"calls":` + one + `,"max_concurrency":51}`, want: []string{"max_concurrency"}, msg: "got 51"},
		{name: "timeout 0.5", raw: `{"calls":` + one + `,"timeout":0.5}`, want: []string{"timeout"}, msg: "between 1 and 300 seconds, got 0.5"},
		{name: "timeout 301", raw: `{"calls":` + one + `,"timeout":301}`, want: []string{"timeout"}, msg: "got 301"},
		{name: "max_attempts 0", raw: `{"calls":` + one + `,"max_attempts":0}`, want: []string{"max_attempts"}},
		{name: "max_attempts 11", raw: `{"calls":` + one + `,"max_attempts":11}`, want: []string{"max_attempts"}, msg: "between 1 and 10, got 11"},
		{name: "unknown server", raw: `{"calls":[{"mcp_server":"nope","tool":"add"}]}`, want: []string{"0.mcp_server"}, msg: `unknown server or group "nope" (hangar_list shows them)`},
		{name: "server ids keep their case", raw: `{"calls":[{"mcp_server":"MY-MCP","tool":"add"}]}`, want: []string{"0.mcp_server"}},
		{name: "missing server", raw: `{"calls":[{"tool":"add"}]}`, want: []string{"0.mcp_server"}, msg: "hangar_list"},
		{name: "missing tool", raw: `{"calls":[{"mcp_server":"my-mcp"}]}`, want: []string{"0.tool"}, msg: "required"},
		{name: "arguments an array", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","arguments":[1,2]}]}`, want: []string{"0.arguments"}, msg: "must be an object"},
		{name: "arguments a string", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","arguments":"a=1"}]}`, want: []string{"0.arguments"}},
		{name: "per-call timeout 0", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","timeout":0}]}`, want: []string{"0.timeout"}},
		{name: "per-call timeout negative", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","timeout":-1}]}`, want: []string{"0.timeout"}},
		{name: "per-call timeout 301", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","timeout":301}]}`, want: []string{"0.timeout"}},
		{name: "unknown field", raw: `{"calls":` + one + `,"max_concurency":5}`, want: []string{"arguments"}, msg: "max_concurency"},
		{name: "unknown field in a call", raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add","args":{}}]}`, want: []string{"arguments"}, msg: "args"},
		{name: "wrong type", raw: `{"calls":` + one + `,"max_concurrency":"5"}`, want: []string{"arguments"}},
		{name: "not an object", raw: `[1]`, want: []string{"arguments"}},
		{
			name: "every problem is listed, with its call index",
			raw: `{"calls":[{"mcp_server":"my-mcp","tool":"add"},{"mcp_server":"nope","tool":""},` +
				`{"mcp_server":"my-mcp-group","tool":"add","timeout":0}],"timeout":0.5}`,
			want: []string{"timeout", "1.mcp_server", "1.tool", "2.timeout"},
		},
	}
	g := newTestGateway(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, errs := g.parseCall(json.RawMessage(tt.raw))
			var got []string
			for _, e := range errs {
				key := e.Field
				if e.Index != nil {
					key = fmt.Sprintf("%d.%s", *e.Index, e.Field)
				}
				got = append(got, key)
				if e.Message == "" {
					t.Errorf("problem %s has no message", key)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("problems (-want +got):\n%s\nall: %+v", diff, errs)
			}
			if len(tt.want) == 0 {
				if args == nil {
					t.Fatal("accepted batch returned no arguments")
				}
				return
			}
			if args != nil {
				t.Errorf("rejected batch also returned arguments %+v", args)
			}
			if tt.msg != "" && !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("message %q does not contain %q", errs[0].Message, tt.msg)
			}
		})
	}
}

func TestParseCallKeepsValues(t *testing.T) {
	g := newTestGateway(t)
	args, errs := g.parseCall(json.RawMessage(`{"calls":[{"mcp_server":"my-mcp-group","tool":"add",` +
		`"arguments":{"a":1,"b":2},"timeout":2.5}],"max_concurrency":5,"timeout":30,"fail_fast":true,"max_attempts":3}`))
	if errs != nil {
		t.Fatal(errs)
	}
	c := args.Calls[0]
	if c.MCPServer != "my-mcp-group" || c.Tool != "add" || string(c.Arguments) != `{"a":1,"b":2}` || *c.Timeout != 2.5 {
		t.Errorf("call = %+v", c)
	}
	if *args.MaxConcurrency != 5 || *args.Timeout != 30 || !args.FailFast || *args.MaxAttempts != 3 {
		t.Errorf("batch = %+v", args)
	}
}
