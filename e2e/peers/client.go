package peers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// callTimeout bounds one call of the sequential and saturated runs, and
// connectTimeout one session's initialize.
const (
	callTimeout    = 10 * time.Second
	connectTimeout = 10 * time.Second
)

// baseTool is the tool every path calls: server-everything's read-only
// "get-sum" (a gateway may list it under a prefixed name).
const baseTool = "get-sum"

var sumArgs = map[string]any{"a": 1, "b": 2}

// transport is how the client reaches a path.
type transport int

const (
	streamable transport = iota // Streamable HTTP, stateful
	sse                         // the 2024-11-05 HTTP+SSE transport
	stdio                       // a child process per session; the endpoint is its command line
)

func (t transport) String() string {
	switch t {
	case sse:
		return "HTTP+SSE"
	case stdio:
		return "stdio"
	}
	return "Streamable HTTP"
}

// client opens MCP Go SDK sessions over one shared HTTP connection pool.
type client struct {
	hc *http.Client
}

// stdioTransport runs command line (space-separated) as the session's
// server, in a process group of its own; closing the session ends it.
func stdioTransport(cmdline string) mcp.Transport {
	args := strings.Fields(cmdline)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return &mcp.CommandTransport{Command: cmd, TerminateDuration: stopGrace}
}

func newClient(maxConns int) *client {
	return &client{hc: &http.Client{Transport: &http.Transport{
		MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns, IdleConnTimeout: time.Minute,
	}}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// connect opens a session to endpoint within timeout.
func (c *client) connect(ctx context.Context, endpoint string, t transport, timeout time.Duration) (*mcp.ClientSession, error) {
	var tr mcp.Transport = &mcp.StreamableClientTransport{
		Endpoint: endpoint, HTTPClient: c.hc, DisableStandaloneSSE: true, MaxRetries: -1,
	}
	switch t {
	case sse:
		tr = &mcp.SSEClientTransport{Endpoint: endpoint, HTTPClient: c.hc}
	case stdio:
		tr = stdioTransport(endpoint)
	}
	// The HTTP+SSE transport reads its event stream on the context it
	// connected with: that one must outlive the connect.
	cctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(timeout, cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "hangar-peers", Version: "1"}, nil).Connect(cctx, tr, nil)
	if !timer.Stop() && err == nil {
		err = fmt.Errorf("no session within %s", timeout)
		_ = cs.Close()
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return cs, nil
}

// connectN opens n sessions; on error it closes those it opened.
func (c *client) connectN(ctx context.Context, endpoint string, t transport, n int) ([]*mcp.ClientSession, error) {
	var out []*mcp.ClientSession
	for range n {
		cs, err := c.connect(ctx, endpoint, t, connectTimeout)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, cs)
	}
	return out, nil
}

func closeAll(sessions []*mcp.ClientSession) {
	for _, cs := range sessions {
		_ = cs.Close()
	}
}

// connectReady opens a session to a peer that has just started, trying
// again until it answers (a gateway may listen before it can serve) or
// startTimeout passes.
func (c *client) connectReady(ctx context.Context, endpoint string, t transport) (*mcp.ClientSession, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		cs, err := c.connect(ctx, endpoint, t, connectTimeout)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return cs, err
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// callSum calls tool with sumArgs and fails unless it answers 3.
func callSum(ctx context.Context, cs *mcp.ClientSession, tool string) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: sumArgs})
	if err != nil {
		return err
	}
	txt := ""
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			txt = t.Text
		}
	}
	if res.IsError || !strings.HasSuffix(txt, " is 3.") {
		return fmt.Errorf("%s answered isError=%v %q", tool, res.IsError, txt)
	}
	return nil
}

// findTool polls tools/list on cs until it offers baseTool, under its own
// name or with a gateway's prefix ("server__get-sum"), and returns the name.
func findTool(ctx context.Context, cs *mcp.ClientSession, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		res, err := cs.ListTools(ctx, nil)
		if err == nil {
			for _, t := range res.Tools {
				if t.Name == baseTool || strings.HasSuffix(t.Name, "_"+baseTool) {
					return t.Name, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not listed")
			}
			return "", fmt.Errorf("no tool %q listed within %s: %w", baseTool, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slot is one client session of the paced load that is opened again after
// a failed call, as a client would re-initialize a session it lost. One
// initialize at a time; the calls that need the session meanwhile wait
// for it within their own budget.
type slot struct {
	c        *client
	endpoint string
	tr       transport
	ctx      context.Context // the run's

	mu      sync.Mutex
	cs      *mcp.ClientSession
	pending chan struct{} // closed when the initialize in flight ends
	lastErr error         // of the last initialize
}

// get returns the slot's session, opening a new one (within timeout) when
// the last call on it failed.
func (s *slot) get(ctx context.Context, timeout time.Duration) (*mcp.ClientSession, error) {
	s.mu.Lock()
	if s.cs != nil {
		defer s.mu.Unlock()
		return s.cs, nil
	}
	if s.pending == nil {
		done := make(chan struct{})
		s.pending = done
		go func() {
			cs, err := s.c.connect(s.ctx, s.endpoint, s.tr, timeout)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.cs, s.lastErr, s.pending = cs, err, nil
			close(done)
		}()
	}
	done := s.pending
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("re-initialize: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cs == nil {
		return nil, fmt.Errorf("re-initialize: %w", s.lastErr)
	}
	return s.cs, nil
}

// drop closes cs (in the background: a session on a frozen server may not
// close quickly) unless the slot already holds another.
func (s *slot) drop(cs *mcp.ClientSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cs == cs {
		s.cs = nil
		go func() { _ = cs.Close() }()
	}
}

func (s *slot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cs != nil {
		_ = s.cs.Close()
		s.cs = nil
	}
}
