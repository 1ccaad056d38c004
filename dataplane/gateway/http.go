package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/upstream"
	"github.com/hangarmesh/hangar/internal/endpoints"
)

// DefaultMaxRequestBytes bounds one HTTP request body unless
// Options.MaxRequestBytes says otherwise (docs/design.md §6).
const DefaultMaxRequestBytes = 4 << 20

// maxBatch bounds a JSON-RPC batch (protocol versions before 2025-06-18).
const maxBatch = 100

// queued bounds the messages kept for a client's standalone stream while it
// has none open; the oldest go first.
const queued = 256

// httpSession is an HTTP client session: the client session plus the
// streams its messages travel on.
type httpSession struct {
	cs *clientSession
	id string

	mu      sync.Mutex
	streams map[string]*callStream // POST streams of requests in flight, by request id
	get     chan jsonrpc.Message   // the standalone GET stream, nil when none
	queue   []jsonrpc.Message      // for the standalone stream while none is open
	version string
}

// send delivers msg on the stream of the request it belongs to, else on
// the standalone stream (or queues it for the next one).
func (hs *httpSession) send(msg jsonrpc.Message, related jsonrpc.ID) {
	if related.IsValid() {
		hs.mu.Lock()
		st := hs.streams[idKey(related)]
		hs.mu.Unlock()
		if st != nil && st.write(msg) {
			return
		}
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.get != nil {
		select {
		case hs.get <- msg:
			return
		default:
		}
	}
	if len(hs.queue) >= queued {
		hs.queue = hs.queue[1:]
	}
	hs.queue = append(hs.queue, msg)
}

// HTTPHandler returns the Streamable HTTP front door (one endpoint: POST,
// GET for the standalone stream, DELETE to end a session). Errors are
// JSON-RPC error objects.
func (g *Gateway) HTTPHandler() http.Handler { return http.HandlerFunc(g.serveHTTP) }

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if rebinding(r) {
		httpError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "forbidden: Host header does not name this loopback server (DNS rebinding protection)")
		return
	}
	switch r.Method {
	case http.MethodPost:
		g.post(w, r)
	case http.MethodGet:
		g.getStream(w, r)
	case http.MethodDelete:
		hs, ok := g.lookup(w, r)
		if !ok {
			return
		}
		g.endSession(hs)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		httpError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "method not allowed: use POST, GET or DELETE")
	}
}

// httpError answers with a JSON-RPC error object and no id.
func httpError(w http.ResponseWriter, status int, code int64, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": msg}})
	_, _ = w.Write(data)
}

// accepts reports whether the Accept header lists every one of types (or
// */*). It runs on every request, so it allocates nothing.
func accepts(r *http.Request, types ...string) bool {
	var found [2]bool // for types; callers pass at most two
	listed, wild := false, false
	for _, v := range r.Header.Values("Accept") {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			mt := upstream.MediaType(part)
			listed = true
			wild = wild || mt == "*/*"
			for i, t := range types[:min(len(types), len(found))] {
				found[i] = found[i] || mt == t
			}
		}
	}
	if !listed {
		return false
	}
	for i := range types[:min(len(types), len(found))] {
		if !found[i] && !wild {
			return false
		}
	}
	return true
}

// lookup finds the request's session, answering the error itself if none.
func (g *Gateway) lookup(w http.ResponseWriter, r *http.Request) (*httpSession, bool) {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "Bad Request: Mcp-Session-Id header is required: send initialize first")
		return nil, false
	}
	g.mu.Lock()
	hs := g.http[sid]
	g.mu.Unlock()
	if hs == nil {
		httpError(w, http.StatusNotFound, -32001, "session not found (it expired or was closed): initialize a new session")
		return nil, false
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !supportedVersion(v) {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, fmt.Sprintf("Bad Request: unsupported MCP-Protocol-Version %q (supported: %s)", v, strings.Join(protocolVersions, ", ")))
		return nil, false
	}
	return hs, true
}

func (g *Gateway) post(w http.ResponseWriter, r *http.Request) {
	if upstream.MediaType(r.Header.Get("Content-Type")) != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, jsonrpc.CodeInvalidRequest, "Unsupported Media Type: Content-Type must be application/json")
		return
	}
	if !accepts(r, "application/json", "text/event-stream") {
		httpError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "Not Acceptable: Accept must list application/json and text/event-stream")
		return
	}
	limit := g.opts.MaxRequestBytes
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var tooLarge *http.MaxBytesError
	if int64(len(body)) > limit || errors.As(err, &tooLarge) {
		httpError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("request body is larger than the agent's limit of %d bytes (--max-request-bytes)", limit))
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "read body: "+err.Error())
		return
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		g.batch(w, r, trimmed)
		return
	}
	msg, err := upstream.DecodeMessage(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "Parse error: "+err.Error())
		return
	}
	if req, ok := msg.(*jsonrpc.Request); ok && req.Method == "initialize" {
		g.initialize(w, r, req)
		return
	}
	hs, ok := g.lookup(w, r)
	if !ok {
		return
	}
	hs.cs.touch()
	switch m := msg.(type) {
	case *jsonrpc.Request:
		if !m.IsCall() {
			hs.cs.handleNotification(m)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		hs.serveCall(w, r, m)
	case *jsonrpc.Response:
		hs.cs.handleResponse(m)
		w.WriteHeader(http.StatusAccepted)
	}
}

// initialize opens a new client session, unless MaxSessions are open.
func (g *Gateway) initialize(w http.ResponseWriter, r *http.Request, req *jsonrpc.Request) {
	if !req.IsCall() {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "initialize must be a request with an id")
		return
	}
	hs := &httpSession{id: newSessionID(), streams: map[string]*callStream{}}
	hs.cs = g.newSession(hs.id, hs)
	g.mu.Lock()
	if len(g.http) >= g.opts.MaxSessions {
		g.mu.Unlock()
		hs.cs.close()
		g.log.Warn("session_limit_reached", "max_sessions", g.opts.MaxSessions)
		httpError(w, http.StatusServiceUnavailable, -32000, fmt.Sprintf(
			"too many client sessions: %d are open (the agent's --max-sessions); close idle sessions (HTTP DELETE) or retry later", g.opts.MaxSessions))
		return
	}
	g.http[hs.id] = hs
	g.mu.Unlock()
	resp := hs.cs.handleRequest(r.Context(), req)
	if resp.Error != nil {
		g.endSession(hs)
		writeMessage(w, resp)
		return
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(resp.Result, &ir)
	hs.version = ir.ProtocolVersion
	w.Header().Set("Mcp-Session-Id", hs.id)
	writeMessage(w, resp)
	hs.cs.markReady()
}

func writeMessage(w http.ResponseWriter, msg jsonrpc.Message) {
	data, _ := upstream.EncodeMessage(msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveCall runs one client request on the handler's goroutine and
// answers on an SSE stream: the messages related to it (progress, log
// messages, a member's requests), written by whoever delivers them while
// the request runs, then its answer.
func (hs *httpSession) serveCall(w http.ResponseWriter, r *http.Request, req *jsonrpc.Request) {
	key := idKey(req.ID)
	st := &callStream{w: w}
	hs.mu.Lock()
	hs.streams[key] = st
	hs.mu.Unlock()
	hs.cs.wg.Add(1)
	resp := hs.cs.handleRequest(r.Context(), req)
	hs.cs.wg.Done()
	hs.mu.Lock()
	delete(hs.streams, key)
	hs.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.done = true
	if st.sse == nil {
		// As the members do (and as clients expect of a server that can
		// stream): an SSE answer, headers and event in one write.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		(&sseWriter{w: w, rc: http.NewResponseController(w)}).write(resp)
		return
	}
	st.sse.write(resp)
}

// callStream is the SSE stream of one client request while it runs.
type callStream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	sse  *sseWriter // nil until the first message
	done bool       // the answer is written: the stream takes no more
}

// write sends msg on the stream; false once the request has its answer.
func (st *callStream) write(msg jsonrpc.Message) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return false
	}
	if st.sse == nil {
		st.sse = startSSE(st.w)
	}
	st.sse.write(msg)
	return true
}

type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the client waits for the headers
	return &sseWriter{w: w, rc: rc}
}

func (s *sseWriter) write(msg jsonrpc.Message) {
	b := eventBuffers.Get().(*[]byte)
	defer putEventBuffer(b)
	data, err := upstream.AppendMessage(append((*b)[:0], "event: message\ndata: "...), msg)
	if err != nil {
		return
	}
	if body := data[len("event: message\ndata: "):]; bytes.ContainsAny(body, "\r\n") {
		// A raw result laid out on several lines would end the event
		// early: put it on one line.
		var c bytes.Buffer
		if json.Compact(&c, body) != nil {
			return
		}
		data = append(data[:len(data)-len(body)], c.Bytes()...)
	}
	*b = append(data, "\n\n"...)
	_, _ = s.w.Write(*b)
	_ = s.rc.Flush()
}

// eventBuffers hold SSE events while they are written.
var eventBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func putEventBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		eventBuffers.Put(b)
	}
}

// getStream serves the standalone SSE stream: what members send outside a
// request (resource updates, list changes, their own requests).
func (g *Gateway) getStream(w http.ResponseWriter, r *http.Request) {
	if !accepts(r, "text/event-stream") {
		httpError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "Not Acceptable: Accept must list text/event-stream")
		return
	}
	hs, ok := g.lookup(w, r)
	if !ok {
		return
	}
	ch := make(chan jsonrpc.Message, queued)
	hs.mu.Lock()
	if hs.get != nil {
		hs.mu.Unlock()
		httpError(w, http.StatusConflict, jsonrpc.CodeInvalidRequest, "Conflict: this session already has a standalone stream")
		return
	}
	for _, m := range hs.queue {
		ch <- m
	}
	hs.queue = nil
	hs.get = ch
	hs.mu.Unlock()
	defer func() {
		hs.mu.Lock()
		if hs.get == ch {
			hs.get = nil
		}
		for len(ch) > 0 { // keep what was not sent for the next stream
			hs.queue = append(hs.queue, <-ch)
		}
		hs.mu.Unlock()
	}()
	sse := startSSE(w)
	for {
		select {
		case msg := <-ch:
			sse.write(msg)
		case <-r.Context().Done():
			return
		case <-hs.cs.ctx.Done():
			return
		}
	}
}

// batch serves a JSON-RPC batch, which only protocol versions before
// 2025-06-18 allow; its answers go back as one JSON array.
func (g *Gateway) batch(w http.ResponseWriter, r *http.Request, body []byte) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "Parse error: "+err.Error())
		return
	}
	hs, ok := g.lookup(w, r)
	if !ok {
		return
	}
	version := r.Header.Get("Mcp-Protocol-Version")
	if version == "" {
		version = hs.version
	}
	if version >= "2025-06-18" {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "Invalid Request: JSON-RPC batches are not allowed by protocol 2025-06-18 and later: send one message per request")
		return
	}
	if len(raws) == 0 || len(raws) > maxBatch {
		httpError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, fmt.Sprintf("Invalid Request: a batch holds 1 to %d messages", maxBatch))
		return
	}
	hs.cs.touch()
	var answers []json.RawMessage
	for _, raw := range raws {
		msg, err := upstream.DecodeMessage(raw)
		if err != nil {
			httpError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "Parse error: "+err.Error())
			return
		}
		switch m := msg.(type) {
		case *jsonrpc.Request:
			if !m.IsCall() {
				hs.cs.handleNotification(m)
				continue
			}
			data, _ := upstream.EncodeMessage(hs.cs.handleRequest(r.Context(), m))
			answers = append(answers, data)
		case *jsonrpc.Response:
			hs.cs.handleResponse(m)
		}
	}
	if len(answers) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	data, _ := json.Marshal(answers)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// endSession closes an HTTP client session.
func (g *Gateway) endSession(hs *httpSession) {
	g.mu.Lock()
	delete(g.http, hs.id)
	g.mu.Unlock()
	hs.cs.close()
}

// expire closes HTTP client sessions idle for longer than SessionIdle.
func (g *Gateway) expire() {
	g.mu.Lock()
	var old []*httpSession
	for _, hs := range g.http {
		if hs.cs.idle() > g.opts.SessionIdle {
			old = append(old, hs)
		}
	}
	g.mu.Unlock()
	css := make([]*clientSession, 0, len(old))
	g.mu.Lock()
	for _, hs := range old {
		g.log.Debug("client_session_expired", "session", hs.id)
		delete(g.http, hs.id)
		css = append(css, hs.cs)
	}
	g.mu.Unlock()
	closeSessions(css)
}

// CloseSessions ends every client session (shutdown): their standing
// streams end and their upstream sessions close.
func (g *Gateway) CloseSessions() { g.closeAll() }

func (g *Gateway) closeAll() {
	g.mu.Lock()
	all := make([]*clientSession, 0, len(g.sessions))
	for cs := range g.sessions {
		all = append(all, cs)
	}
	g.http = map[string]*httpSession{}
	g.mu.Unlock()
	closeSessions(all)
}

// Sessions returns the number of open client sessions.
func (g *Gateway) Sessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// broadcast sends a notification to every initialized client session.
func (g *Gateway) broadcast(method string) {
	g.mu.Lock()
	all := make([]*clientSession, 0, len(g.sessions))
	for cs := range g.sessions {
		all = append(all, cs)
	}
	g.mu.Unlock()
	for _, cs := range all {
		cs.mu.Lock()
		ready := cs.ready
		cs.mu.Unlock()
		if ready {
			cs.out.send(&jsonrpc.Request{Method: method}, jsonrpc.ID{})
		}
	}
}

// rebinding reports a request that names another host while it arrived on
// a loopback address: a DNS rebinding attack from a browser.
func rebinding(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && la != nil && isLoopback(la.String()) && !isLoopback(r.Host)
}

// isLoopback tests a host or host:port.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	return endpoints.IsLoopback(host)
}

// frontDoorTool looks up a tool of the catalog.
func (g *Gateway) frontDoorTool(name string) (frontTool, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.frontDoor[name]
	return t, ok
}

// ServeConn serves one client session over conn (stdio, or an in-memory
// transport) until the client closes it or ctx ends. On end of input it
// waits for the requests in flight to answer.
func (g *Gateway) ServeConn(ctx context.Context, conn interface {
	Read(context.Context) (jsonrpc.Message, error)
	Write(context.Context, jsonrpc.Message) error
}) error {
	out := &connOut{ctx: ctx, conn: conn}
	cs := g.newSession(newSessionID(), out)
	defer cs.close()
	for {
		msg, err := conn.Read(ctx)
		if err != nil {
			cs.wg.Wait()
			return err
		}
		switch m := msg.(type) {
		case *jsonrpc.Request:
			switch {
			case !m.IsCall():
				cs.handleNotification(m)
			case m.Method == "initialize": // before anything that needs its params
				out.send(cs.handleRequest(ctx, m), jsonrpc.ID{})
				cs.markReady()
			default:
				cs.wg.Go(func() { out.send(cs.handleRequest(ctx, m), jsonrpc.ID{}) })
			}
		case *jsonrpc.Response:
			cs.handleResponse(m)
		}
	}
}

// connOut writes to a connection, one message at a time.
type connOut struct {
	ctx  context.Context
	mu   sync.Mutex
	conn interface {
		Write(context.Context, jsonrpc.Message) error
	}
}

func (c *connOut) send(msg jsonrpc.Message, _ jsonrpc.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.Write(c.ctx, msg)
}
