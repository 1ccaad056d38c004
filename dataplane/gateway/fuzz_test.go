package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// fuzzGateway is newTestGateway for fuzz targets, with a front-door tool.
func fuzzGateway(f *testing.F) *Gateway {
	f.Helper()
	fleet, err := fleetfile.Parse("test.yaml", []byte(testFleet), nil)
	if err != nil {
		f.Fatal(err)
	}
	r, err := router.New(fleet, router.Options{})
	if err != nil {
		f.Fatal(err)
	}
	g := New(r, Options{})
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

// FuzzFrontDoorDecode: whatever body a client POSTs on an open session,
// the front door answers with a JSON-RPC message (a response, or an error
// object with a 4xx status) or 202 for a notification, never a panic or a
// 5xx, and a body that is not a well-formed JSON-RPC message (the SDK's
// decoder) is never taken as a request.
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
	g := fuzzGateway(f)
	h := g.HTTPHandler()
	post := func(body, sid string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			r.Header.Set("Mcp-Session-Id", sid)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	init := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}`, "")
	sid := init.Header().Get("Mcp-Session-Id")
	if init.Code != http.StatusOK || sid == "" {
		f.Fatalf("initialize: %d %s", init.Code, init.Body)
	}
	f.Cleanup(g.CloseSessions)
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.Contains(body, []byte("initialize")) {
			return // would open sessions up to the limit
		}
		w := post(string(body), sid)
		switch {
		case w.Code == http.StatusAccepted:
			return
		case w.Code >= 500:
			t.Fatalf("%q: HTTP %d %s", body, w.Code, w.Body)
		}
		var answer struct {
			JSONRPC string          `json:"jsonrpc"`
			Result  json.RawMessage `json:"result"`
			Error   *jsonrpc.Error  `json:"error"`
		}
		data := w.Body.Bytes()
		if _, event, ok := bytes.Cut(data, []byte("data: ")); ok && bytes.HasPrefix(data, []byte("event:")) {
			data, _, _ = bytes.Cut(event, []byte("\n"))
		}
		if err := json.Unmarshal(data, &answer); err != nil && !bytes.HasPrefix(bytes.TrimSpace(w.Body.Bytes()), []byte("[")) {
			t.Fatalf("%q: answer is not JSON-RPC: %d %q", body, w.Code, w.Body)
		}
		if w.Code != http.StatusOK && answer.Error == nil {
			t.Fatalf("%q: HTTP %d without a JSON-RPC error: %q", body, w.Code, w.Body)
		}
		if _, err := jsonrpc.DecodeMessage(body); err != nil && w.Code == http.StatusOK && answer.Error == nil {
			t.Fatalf("%q: the SDK rejects it (%v), the front door answered %s", body, err, w.Body)
		}
	})
}
