package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/endpoints"
)

// MaxRequestBytes bounds one HTTP request body (docs/design.md §6).
const MaxRequestBytes = 4 << 20

// sessionIdle is how long an HTTP session may stay unused before the SDK
// closes it and the fast path forgets it.
const sessionIdle = time.Hour

// HTTPHandler returns the Streamable HTTP front door. sdk (the SDK's
// handler) serves every request but one kind: a tools/call of a front-door
// tool on a session sdk opened. That one is forwarded to the group as
// bytes, the way a reverse proxy would, instead of being decoded into Go
// values and encoded again on each side, which costs more than the proxy.
func (g *Gateway) HTTPHandler(sdk http.Handler) http.Handler {
	return &fastPath{gw: g, sdk: sdk, sessions: map[string]time.Time{}}
}

type fastPath struct {
	gw  *Gateway
	sdk http.Handler

	mu       sync.Mutex
	sessions map[string]time.Time // sessions sdk opened → last use
}

func (f *fastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Method == http.MethodPost && sid != "" && f.known(sid) && r.ContentLength <= MaxRequestBytes && !rebinding(r) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
		if err == nil && len(body) <= MaxRequestBytes {
			if call, ok := f.frontDoorCall(body); ok {
				f.forward(w, r, call)
				return
			}
		}
		// Not ours: hand the request on with its body intact.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	}
	rec := &sessionRecorder{ResponseWriter: w, f: f}
	f.sdk.ServeHTTP(rec, r)
	if r.Method == http.MethodDelete && sid != "" && rec.status/100 == 2 {
		f.forget(sid)
	}
}

// rebinding reports a request that the SDK's handler rejects against DNS
// rebinding: a non-localhost Host on a loopback connection. The fast path
// leaves such requests to the SDK, so the check covers every request.
func rebinding(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && la != nil && isLoopback(la.String()) && !isLoopback(r.Host)
}

// isLoopback is the SDK's test of a host or host:port.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	return endpoints.IsLoopback(host)
}

// toolCall is a JSON-RPC tools/call request, params kept raw.
type toolCall struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	target frontTool
}

// frontDoorCall recognizes a single tools/call request of a front-door tool.
func (f *fastPath) frontDoorCall(body []byte) (*toolCall, bool) {
	if !bytes.Contains(body, []byte(`tools/call`)) {
		return nil, false
	}
	// The SDK's own decoder, so the fast path takes exactly the requests
	// the SDK would (version tag "2.0", keys in their case, an id).
	msg, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		return nil, false
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok || req.Method != "tools/call" || !req.IsCall() {
		return nil, false
	}
	id, err := json.Marshal(req.ID.Raw())
	if err != nil {
		return nil, false
	}
	c := toolCall{ID: id, Method: req.Method, Params: req.Params}
	var p struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(c.Params, &p) != nil {
		return nil, false
	}
	t, ok := f.gw.frontDoorTool(p.Name)
	if !ok {
		return nil, false
	}
	c.target = t
	return &c, true
}

// forward runs the call on the group and answers with a JSON response.
func (f *fastPath) forward(w http.ResponseWriter, r *http.Request, c *toolCall) {
	res, err := f.gw.r().Forward(r.Context(), c.target.group, c.target.tool, c.Params, router.CallOptions{})
	var b bytes.Buffer
	b.Grow(64 + len(c.ID))
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(c.ID)
	switch {
	case err == nil:
		b.WriteString(`,"result":`)
		b.Write(res.Reply.Result)
	default:
		if rpcErr, ok := callerError(err); ok {
			e, _ := json.Marshal(rpcErr)
			b.WriteString(`,"error":`)
			b.Write(e)
		} else {
			data, _ := json.Marshal(failedResult(err))
			b.WriteString(`,"result":`)
			b.Write(data)
		}
	}
	b.WriteByte('}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	f.touch(r.Header.Get("Mcp-Session-Id"))
}

func (f *fastPath) known(sid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sessions[sid]
	return ok
}

func (f *fastPath) touch(sid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.sessions[sid] = now
	if len(f.sessions)%1024 == 0 {
		for id, seen := range f.sessions {
			if now.Sub(seen) > sessionIdle {
				delete(f.sessions, id)
			}
		}
	}
}

func (f *fastPath) forget(sid string) {
	f.mu.Lock()
	delete(f.sessions, sid)
	f.mu.Unlock()
}

// sessionRecorder notes the session id the SDK hands out and the status.
type sessionRecorder struct {
	http.ResponseWriter
	f      *fastPath
	status int
}

func (s *sessionRecorder) WriteHeader(code int) {
	s.status = code
	if sid := s.Header().Get("Mcp-Session-Id"); sid != "" && code/100 == 2 {
		s.f.touch(sid)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush of the real writer.
func (s *sessionRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// frontDoorTool looks up an exposed front-door tool.
func (g *Gateway) frontDoorTool(name string) (frontTool, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.frontDoor[name]
	return t, ok
}

// failedResult is what an ordinary MCP client gets for a failed front-door
// call: an isError result naming the error type (CircuitOpen,
// NoAvailableMemberError, …), so the model can read what happened.
func failedResult(err error) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s: %v", router.TypeOf(err), err)}},
	}
}

// callerError returns the member's JSON-RPC error when err is the caller's
// mistake (invalid params, unknown tool), to be passed on as such.
func callerError(err error) (*jsonrpc.Error, bool) {
	var rpcErr *jsonrpc.Error
	if router.TypeOf(err) == router.ErrCaller && errors.As(err, &rpcErr) {
		return rpcErr, true
	}
	return nil, false
}
