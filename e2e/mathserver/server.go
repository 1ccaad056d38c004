package mathserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultName is the server name used when Options.Name is empty.
const DefaultName = "mcp-math"

// MCPPath is the path of the MCP endpoint in Handler.
const MCPPath = "/mcp"

// Options configure a Server. The zero value is a stateful server named
// DefaultName with a time-seeded random source.
type Options struct {
	// Name is reported by the whoami tool, in serverInfo and in Stats.
	// Empty means DefaultName.
	Name string
	// Stateless serves the SDK's stateless Streamable HTTP mode in Handler
	// (no Mcp-Session-Id; each request stands alone).
	Stateless bool
	// Seed seeds the random source that decides which calls fail when
	// Faults.FailRate is below 1. Zero means a time-based seed.
	Seed uint64
	// Logger receives the SDK's logs. Nil means none.
	Logger *slog.Logger
}

// Stats count the requests a Server received since it started or since the
// last ResetStats.
type Stats struct {
	// Name is the server's name.
	Name string `json:"name"`
	// Calls counts tools/call requests by tool name (never nil).
	Calls map[string]int64 `json:"calls"`
	// TotalCalls counts every tools/call request received.
	TotalCalls int64 `json:"total_calls"`
	// FailedCalls counts the tools/call requests failed by injection.
	FailedCalls int64 `json:"failed_calls"`
	// ListCalls counts tools/list requests, failed ones included.
	ListCalls int64 `json:"list_calls"`
	// CancelledCalls counts hung calls whose request was cancelled (the
	// client sent notifications/cancelled or went away).
	CancelledCalls int64 `json:"cancelled_calls"`
}

// Server is an mcp-math server. Its methods are safe for concurrent use.
type Server struct {
	name    string
	mcp     *mcp.Server
	handler http.Handler

	mu       sync.Mutex
	faults   Faults        // normalized
	release  chan struct{} // closed to release every hung call
	holds    map[string]*hold
	closed   bool
	rng      *rand.Rand
	stats    Stats
	appended []string
}

// New returns a Server that injects no faults.
func New(opts Options) *Server {
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Server{
		name:    name,
		faults:  Faults{}.normalized(),
		release: make(chan struct{}),
		holds:   map[string]*hold{},
		rng:     rand.New(rand.NewPCG(seed, seed)),
		stats:   Stats{Name: name, Calls: map[string]int64{}},
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: name, Version: "dev"},
		&mcp.ServerOptions{Logger: opts.Logger})
	s.addTools()
	s.mcp.AddReceivingMiddleware(s.inject)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp },
		&mcp.StreamableHTTPOptions{
			Stateless:                    opts.Stateless,
			Logger:                       opts.Logger,
			PropagateRequestCancellation: true,
		})
	mux := http.NewServeMux()
	mux.Handle(MCPPath, s.releaseOnDelete(mcpHandler))
	s.registerAdmin(mux)
	s.handler = mux
	return s
}

// Name returns the server's name.
func (s *Server) Name() string { return s.name }

// Handler returns the HTTP handler serving MCP at /mcp and the admin API
// under /admin/.
func (s *Server) Handler() http.Handler { return s.handler }

// SetFaults validates f and, if it is valid, replaces the faults in force.
// Clearing Hang releases the calls it holds. An invalid f changes nothing.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Hang && !f.Hang {
		s.releaseLocked()
	}
	s.faults = f.normalized()
	return nil
}

// Faults returns the faults in force, with defaults filled in.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.FailTools = append([]string(nil), f.FailTools...)
	return f
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = make(map[string]int64, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		st.Calls[k] = v
	}
	return st
}

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Name: s.name, Calls: map[string]int64{}}
}

// Close releases every call held by the hang fault and turns that fault
// off for good, so that a server shutting down is not kept waiting. The
// Server otherwise keeps working; Close stops no listener.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.releaseLocked()
	}
	return nil
}

func (s *Server) releaseLocked() {
	close(s.release)
	s.release = make(chan struct{})
}

// inject is the receiving middleware that counts requests and injects the
// faults in force into tools/list and tools/call.
func (s *Server) inject(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/list":
			if s.recordList() {
				return nil, internalError("mcp-math: injected fault: tools/list is failing")
			}
		case "tools/call":
			return s.call(ctx, method, req, next)
		}
		return next(ctx, method, req)
	}
}

// call runs one tools/call through the hang, latency and failure faults.
func (s *Server) call(ctx context.Context, method string, req mcp.Request, next mcp.MethodHandler) (mcp.Result, error) {
	var tool string
	if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && p != nil {
		tool = p.Name
	}
	if hang, release := s.recordCall(tool); hang {
		if err := s.hang(ctx, req.GetSession().ID(), release); err != nil {
			return nil, err
		}
	}
	if d := s.Faults().Latency; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	mode, fail := s.decideFailure(tool)
	switch {
	case !fail:
		return next(ctx, method, req)
	case mode == FailTool:
		return &mcp.CallToolResult{
			IsError: true,
			Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("mcp-math: injected fault: tool %q failed", tool)}},
		}, nil
	default:
		return nil, internalError(fmt.Sprintf("mcp-math: injected fault: tools/call %q failed", tool))
	}
}

// hang blocks until ctx ends, release is closed or the client deletes the
// session. The SDK closes a session only once its calls have returned, so
// without the last case a client that closes its session while a call hangs
// (its notifications/cancelled is best effort) would wait forever.
func (s *Server) hang(ctx context.Context, sessionID string, release <-chan struct{}) error {
	gone, done := s.holdSession(sessionID)
	defer done()
	select {
	case <-ctx.Done():
		s.mu.Lock()
		s.stats.CancelledCalls++
		s.mu.Unlock()
		return ctx.Err()
	case <-gone:
		return errSessionClosed
	case <-release:
		return nil
	}
}

var errSessionClosed = errors.New("mathserver: session closed")

// hold tracks the calls hung on one session.
type hold struct {
	gone    chan struct{} // closed when the session is deleted
	waiters int
}

// holdSession registers a call hung on session id. It returns a channel
// closed when the client deletes the session and a func to call when the
// call stops waiting. A call without a session (stateless) is never released
// this way: its context ends with its HTTP request.
func (s *Server) holdSession(id string) (gone <-chan struct{}, done func()) {
	if id == "" {
		return nil, func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.holds[id]
	if h == nil {
		h = &hold{gone: make(chan struct{})}
		s.holds[id] = h
	}
	h.waiters++
	return h.gone, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if h.waiters--; h.waiters == 0 && s.holds[id] == h {
			delete(s.holds, id)
		}
	}
}

// releaseOnDelete releases the calls hung on a session before the SDK
// handles the client's DELETE of that session.
func (s *Server) releaseOnDelete(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Mcp-Session-Id"); r.Method == http.MethodDelete && id != "" {
			s.mu.Lock()
			if h := s.holds[id]; h != nil {
				close(h.gone)
				delete(s.holds, id)
			}
			s.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// recordList counts a tools/list request and reports whether it must fail.
func (s *Server) recordList() (fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ListCalls++
	return s.faults.FailList
}

// recordCall counts a tools/call request and reports whether it must hang
// and the channel closed when the hang is lifted.
func (s *Server) recordCall(tool string) (hang bool, release <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.TotalCalls++
	s.stats.Calls[tool]++
	return s.faults.Hang && !s.closed, s.release
}

// decideFailure decides, with the faults in force, whether a call to tool
// fails and how, and counts it if it does.
func (s *Server) decideFailure(tool string) (FailMode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if !f.failsTool(tool) {
		return "", false
	}
	if f.FailRate < 1 && s.rng.Float64() >= f.FailRate {
		return "", false
	}
	s.stats.FailedCalls++
	return f.FailMode, true
}

// internalError is a JSON-RPC -32603 error. Returned from a receiving
// middleware (or a tool handler) it reaches the client as a protocol error,
// not as a tool result.
func internalError(msg string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: msg}
}
