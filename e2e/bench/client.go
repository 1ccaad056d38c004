package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// callTimeout bounds one measured call, so a hung path cannot hang the run.
const callTimeout = 10 * time.Second

// Path names, as the report prints them.
const (
	pathDirect       = "direct"
	pathReverseProxy = "reverse_proxy"
	pathFrontDoor    = "front_door"
	pathHangarCall   = "hangar_call"
)

// path is one way of calling "add".
type path struct {
	name string
	url  string
	call func(ctx context.Context, cs *mcp.ClientSession) error
}

var (
	addArgs        = map[string]any{"a": 1, "b": 2}
	hangarCallArgs = map[string]any{"calls": []map[string]any{
		{"mcp_server": groupID, "tool": "add", "arguments": addArgs},
	}}
)

// callAdd calls the tool "add" and fails unless it succeeds.
func callAdd(ctx context.Context, cs *mcp.ClientSession) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: addArgs})
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("add answered isError: %s", text(res))
	}
	return nil
}

// callHangar calls "add" on the group through hangar_call, one call per
// batch, and fails unless the batch and its one call succeed.
func callHangar(ctx context.Context, cs *mcp.ClientSession) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hangar_call", Arguments: hangarCallArgs})
	if err != nil {
		return err
	}
	// structuredContent arrives decoded as map[string]any: look, do not re-decode.
	batch, _ := res.StructuredContent.(map[string]any)
	results, _ := batch["results"].([]any)
	if res.IsError || batch["success"] != true || len(results) != 1 {
		return fmt.Errorf("hangar_call failed: %s", text(res))
	}
	if r, _ := results[0].(map[string]any); r["success"] != true {
		return fmt.Errorf("hangar_call: the call failed: %s", text(res))
	}
	return nil
}

func text(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return "(no text content)"
}

// dialer opens MCP client sessions over one shared HTTP connection pool.
type dialer struct {
	hc *http.Client
}

func newDialer(maxConns int) *dialer {
	return &dialer{hc: &http.Client{Transport: &http.Transport{
		MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns, IdleConnTimeout: time.Minute,
	}}}
}

// connect opens a stateful Streamable HTTP session to endpoint. The
// standalone SSE stream is left off: the bench only needs replies.
func (d *dialer) connect(ctx context.Context, endpoint string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "hangar-bench", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: endpoint, HTTPClient: d.hc, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return cs, nil
}

// connectN opens n sessions to endpoint; on error it closes those opened.
func (d *dialer) connectN(ctx context.Context, endpoint string, n int) ([]*mcp.ClientSession, error) {
	var out []*mcp.ClientSession
	for range n {
		cs, err := d.connect(ctx, endpoint)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, cs)
	}
	return out, nil
}

func (d *dialer) close() { d.hc.CloseIdleConnections() }

func closeAll(sessions []*mcp.ClientSession) {
	for _, cs := range sessions {
		_ = cs.Close()
	}
}

// waitForTool polls tools/list on cs until it offers tool: the agent adds
// front-door tools once it has listed the members' tools.
func waitForTool(ctx context.Context, cs *mcp.ClientSession, tool string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		res, err := cs.ListTools(ctx, nil)
		if err == nil && slices.ContainsFunc(res.Tools, func(t *mcp.Tool) bool { return t.Name == tool }) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not listed")
			}
			return fmt.Errorf("the agent did not offer the front-door tool %q within %s (is tool_access.mode front_door set?): %w", tool, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
