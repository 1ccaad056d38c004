package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/config"
	"github.com/hangarmesh/hangar/dataplane/router"
)

// fuzzGateway is newTestGateway for fuzz targets, with a front-door tool.
func fuzzGateway(f *testing.F) *Gateway {
	f.Helper()
	fleet, err := config.Parse("test.yaml", []byte(testFleet), nil)
	if err != nil {
		f.Fatal(err)
	}
	r, err := router.New(fleet, router.Options{})
	if err != nil {
		f.Fatal(err)
	}
	g := New(r, nil)
	g.frontDoor["add"] = frontTool{group: "my-mcp-group", tool: "add"}
	return g
}

// FuzzHangarCallArgs: hangar_call's arguments (any JSON value, as the
// protocol delivers them) are either accepted as a batch within every
// limit or rejected with problems that each name a field and say what is
// wrong; never both, never neither, never a panic.
func FuzzHangarCallArgs(f *testing.F) {
	for _, s := range []string{
		`{"calls":[{"mcp_server":"my-mcp-group","tool":"add","arguments":{"a":1,"b":2}}]}`,
		`{"calls":[{"mcp_server":"my-mcp","tool":"add","timeout":5}],"max_concurrency":2,"timeout":30,"fail_fast":true,"max_attempts":3}`,
		`{"calls":[]}`, `{}`, ``, `null`, `[]`, `{"calls":[{"mcp_server":"nope","tool":""}]}`,
		`{"calls":[{"mcp_server":"my-mcp","tool":"add","arguments":[1]}],"max_concurrency":0}`,
		`{"calls":[{"mcp_server":"my-mcp","tool":"add"}],"extra":1}`,
	} {
		f.Add([]byte(s))
	}
	g := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(bytes.TrimSpace(raw)) > 0 && !json.Valid(raw) {
			return // the JSON-RPC layer delivers JSON only
		}
		args, problems := g.parseCall(raw)
		if (args == nil) == (problems == nil) {
			t.Fatalf("parseCall(%q) = %v, %v: want a batch or problems", raw, args, problems)
		}
		for _, p := range problems {
			if p.Field == "" || p.Message == "" {
				t.Errorf("parseCall(%q): problem without a field or message: %+v", raw, p)
			}
			if p.Index != nil && (*p.Index < 0 || *p.Index >= MaxBatch) {
				t.Errorf("parseCall(%q): problem index %d out of range", raw, *p.Index)
			}
		}
		if args == nil {
			return
		}
		if n := len(args.Calls); n < 1 || n > MaxBatch {
			t.Errorf("parseCall(%q) accepted %d calls", raw, n)
		}
		for _, c := range args.Calls {
			if !g.known(c.MCPServer) || c.Tool == "" {
				t.Errorf("parseCall(%q) accepted a call to %q tool %q", raw, c.MCPServer, c.Tool)
			}
			if a := bytes.TrimSpace(c.Arguments); len(a) > 0 && a[0] != '{' && string(a) != "null" {
				t.Errorf("parseCall(%q) accepted arguments %s", raw, a)
			}
			if c.Timeout != nil && (*c.Timeout <= 0 || *c.Timeout > MaxTimeoutSeconds) {
				t.Errorf("parseCall(%q) accepted a call timeout of %g", raw, *c.Timeout)
			}
		}
		if c := args.MaxConcurrency; c != nil && (*c < 1 || *c > MaxConcurrency) {
			t.Errorf("parseCall(%q) accepted max_concurrency %d", raw, *c)
		}
		if a := args.MaxAttempts; a != nil && (*a < 1 || *a > MaxAttempts) {
			t.Errorf("parseCall(%q) accepted max_attempts %d", raw, *a)
		}
	})
}

// FuzzFrontDoorDecode: the front door's fast path takes a request body as
// a tools/call of a front-door tool only if the SDK's JSON-RPC decoder
// reads it as the same request: same method, same id, same tool.
func FuzzFrontDoorDecode(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"add"}}`,
		`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"add"}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"add"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}]`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`,
		`{"jsonrpc":"1.0","id":5,"method":"tools/call","params":{"name":"add"}}`,
		`{"id":6,"method":"tools/call","params":{"name":"add"}}`,
		`{"JSONRPC":"2.0","ID":7,"METHOD":"tools/call","PARAMS":{"NAME":"add"}}`,
		`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"add"},"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add"}} {"x":1}`,
	} {
		f.Add([]byte(s))
	}
	fp := &fastPath{gw: fuzzGateway(f), sessions: map[string]time.Time{}}
	f.Fuzz(func(t *testing.T, body []byte) {
		call, ok := fp.frontDoorCall(body)
		if !ok {
			return
		}
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			t.Fatalf("fast path took %q, the SDK rejects it: %v", body, err)
		}
		req, isReq := msg.(*jsonrpc.Request)
		if !isReq || req.Method != "tools/call" || !req.IsCall() {
			t.Fatalf("fast path took %q as a tools/call, the SDK reads %#v", body, msg)
		}
		id, _ := json.Marshal(req.ID.Raw())
		var a, b any
		if json.Unmarshal(id, &a) != nil || json.Unmarshal(call.ID, &b) != nil || !jsonEqual(a, b) {
			t.Fatalf("fast path took %q with id %s, the SDK with id %s", body, call.ID, id)
		}
		var p struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil || p.Name != "add" {
			t.Fatalf("fast path took %q as a call of add, the SDK's params name %q (%v)", body, p.Name, err)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
