package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connect opens an MCP client session to an agent.
func connect(ctx context.Context, url string) (*mcp.ClientSession, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "hangar-demo", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to the agent at %s: %w", url, err)
	}
	return cs, nil
}

// callResult is one result of hangar_call.
type callResult struct {
	Success   bool            `json:"success"`
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	ErrorType *string         `json:"error_type"`
	Member    string          `json:"mcp_server_used"`
	Attempts  int             `json:"attempts"`
}

// addThroughGroup asks the agent, with hangar_call, to have the group add a
// and b, checks the sum and returns the member that served the call and the
// number of members the agent tried.
func addThroughGroup(ctx context.Context, cs *mcp.ClientSession, a, b int) (member string, attempts int, err error) {
	args := map[string]any{"calls": []map[string]any{{
		"mcp_server": groupName, "tool": "add", "arguments": map[string]int{"a": a, "b": b},
	}}}
	var batch struct {
		Results []callResult `json:"results"`
	}
	if err := callTool(ctx, cs, "hangar_call", args, &batch); err != nil {
		return "", 0, err
	}
	if len(batch.Results) != 1 {
		return "", 0, fmt.Errorf("hangar_call returned %d results for 1 call", len(batch.Results))
	}
	r := batch.Results[0]
	if !r.Success {
		typ, msg := "unknown", "no error text"
		if r.ErrorType != nil {
			typ = *r.ErrorType
		}
		if r.Error != nil {
			msg = *r.Error
		}
		return r.Member, r.Attempts, fmt.Errorf("%s: %s", typ, msg)
	}
	var res struct {
		StructuredContent struct {
			Result float64 `json:"result"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return r.Member, r.Attempts, fmt.Errorf("decode add result %s: %w", r.Result, err)
	}
	if got := res.StructuredContent.Result; got != float64(a+b) {
		return r.Member, r.Attempts, fmt.Errorf("add(%d, %d) = %v from %s, want %d", a, b, got, r.Member, a+b)
	}
	return r.Member, r.Attempts, nil
}

// groupStatus is the part of hangar_details' group answer the demo shows.
type groupStatus struct {
	State        string `json:"state"`
	Breaker      string `json:"circuit_breaker_state"`
	ActiveMember string `json:"active_member"`
	Snapshot     uint64 `json:"global_snapshot_version"`
	Members      []struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		InRotation bool   `json:"in_rotation"`
		Rotation   string `json:"rotation"`
		Priority   int    `json:"priority"`
	} `json:"members"`
}

// details returns the group's status from hangar_details.
func details(ctx context.Context, cs *mcp.ClientSession) (groupStatus, error) {
	var gs groupStatus
	err := callTool(ctx, cs, "hangar_details", map[string]string{"mcp_server": groupName}, &gs)
	return gs, err
}

// member returns the status of member id ("" state if it is not listed).
func (gs groupStatus) member(id string) (state string, inRotation bool) {
	for _, m := range gs.Members {
		if m.ID == id {
			return m.State, m.InRotation
		}
	}
	return "", false
}

// allReady reports whether every member is ready and in rotation.
func (gs groupStatus) allReady() bool {
	for _, m := range gs.Members {
		if m.State != "ready" || !m.InRotation {
			return false
		}
	}
	return len(gs.Members) > 0
}

// oneLine renders the status on one line, for messages.
func (gs groupStatus) oneLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "active_member=%s snapshot=%d", gs.ActiveMember, gs.Snapshot)
	for _, m := range gs.Members {
		fmt.Fprintf(&b, " %s=%s/in_rotation=%t", m.ID, m.State, m.InRotation)
	}
	return b.String()
}

// callTool calls a management tool and decodes its structured answer.
func callTool(ctx context.Context, cs *mcp.ClientSession, tool string, args, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return fmt.Errorf("%s: %w", tool, err)
	}
	if res.StructuredContent == nil {
		return fmt.Errorf("%s: answer has no structured content", tool)
	}
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return fmt.Errorf("%s: %w", tool, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer %s: %w", tool, data, err)
	}
	return nil
}

// errInterrupted is returned when the demo is stopped by Ctrl-C.
var errInterrupted = errors.New("interrupted")
