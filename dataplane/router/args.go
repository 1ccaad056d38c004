package router

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// schemas caches a member's resolved input schemas by tool definition (a
// new tools/list gives new definitions, so a changed schema is resolved
// again). Safe for concurrent use.
type schemas struct {
	mu       sync.Mutex
	resolved map[*mcp.Tool]*jsonschema.Resolved // nil value: the schema could not be used
}

// checkedDrafts are the $schema values the validator implements; a schema
// of another draft is left to the member.
var checkedDrafts = []string{"", "http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema",
	"https://json-schema.org/draft/2020-12/schema"}

// resolve returns the resolved input schema of t, or nil when it has none
// or it cannot be resolved (then the member judges the arguments itself).
func (s *schemas) resolve(t *mcp.Tool) *jsonschema.Resolved {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs, ok := s.resolved[t]; ok {
		return rs
	}
	if s.resolved == nil || len(s.resolved) > 1024 {
		s.resolved = map[*mcp.Tool]*jsonschema.Resolved{} // old definitions go
	}
	var rs *jsonschema.Resolved
	if data, err := json.Marshal(t.InputSchema); err == nil && t.InputSchema != nil {
		var sch jsonschema.Schema
		if json.Unmarshal(data, &sch) == nil && slices.Contains(checkedDrafts, sch.Schema) {
			rs, _ = sch.Resolve(nil) // no loader: a remote $ref is not fetched, and the schema is skipped
		}
	}
	s.resolved[t] = rs
	return rs
}

// checkArgs checks a call's raw arguments against the input schema of tool
// as m last listed it (docs/design.md §3.4): arguments that do not match
// get a caller error (-32602) from the agent, counted against nothing. A
// tool the agent does not know, or a schema it cannot use, is left to the
// member. Absent or null arguments are checked as {}.
func (m *Member) checkArgs(target, tool string, args json.RawMessage) error {
	t, ok := m.client.Tool(tool)
	if !ok {
		return nil
	}
	rs := m.schemas.resolve(t)
	if rs == nil {
		return nil
	}
	var v any
	if len(args) > 0 {
		if err := json.Unmarshal(args, &v); err != nil {
			return argsError(target, tool, m.ID(), fmt.Errorf("not JSON: %w", err))
		}
	}
	if v == nil {
		// Absent or null: clients (the Go SDK among them) send null for
		// "no arguments"; it is checked as {}, so it passes unless the
		// schema requires something.
		v = map[string]any{}
	}
	if err := rs.Validate(v); err != nil {
		return argsError(target, tool, m.ID(), err)
	}
	return nil
}

func argsError(target, tool, member string, err error) error {
	msg := fmt.Sprintf("invalid arguments for tool %s: %v (see the tool's inputSchema in tools/list of %s)", tool, err, member)
	return &CallError{Type: ErrCaller, Target: target, Msg: "arguments rejected by the agent",
		Err: &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: msg}}
}

// checkRequest checks q's arguments against the schema of the first of
// members that knows the tool (a group's members serve the same tools).
func checkRequest(target string, q request, members ...*Member) error {
	for _, m := range members {
		if _, ok := m.client.Tool(q.tool); ok {
			return m.checkArgs(target, q.tool, q.args)
		}
	}
	return nil
}
