package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/router"
)

// The management tools' input schemas.
var (
	schemaNone     = json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)
	schemaServerID = json.RawMessage(`{"type":"object","properties":{"mcp_server":{"type":"string","description":"MCP server or group id"}},"required":["mcp_server"],"additionalProperties":false}`)
	schemaList     = json.RawMessage(`{"type":"object","properties":{"state_filter":{"type":"string","enum":["cold","initializing","ready","degraded","dead"]}},"additionalProperties":false}`)
	schemaCall     = json.RawMessage(`{
 "type":"object",
 "properties":{
  "calls":{"type":"array","minItems":1,"maxItems":100,"items":{
    "type":"object",
    "properties":{
      "mcp_server":{"type":"string","description":"server or group id"},
      "tool":{"type":"string"},
      "arguments":{"type":"object"},
      "timeout":{"type":"number","description":"seconds, for this call"}},
    "required":["mcp_server","tool"]}},
  "max_concurrency":{"type":"integer","minimum":1,"maximum":50,"default":10},
  "timeout":{"type":"number","minimum":1,"maximum":300,"default":60,"description":"seconds, for the whole batch"},
  "fail_fast":{"type":"boolean","default":false},
  "max_attempts":{"type":"integer","minimum":1,"maximum":10,"description":"members tried per call (default: the group's failover.max_attempts)"}},
 "required":["calls"]}`)
)

// managementTools are the tools every agent offers besides the front door's.
var managementTools = []string{"hangar_call", "hangar_list", "hangar_status", "hangar_details",
	"hangar_tools", "hangar_health", "hangar_group_list"}

func readOnly() *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true}
}

// mgmtTool is a management tool: its definition and handler. A handler's
// *jsonrpc.Error is the request's error; any other error is a tool error.
type mgmtTool struct {
	def     *mcp.Tool
	handler mcp.ToolHandler
}

func (g *Gateway) addTool(t *mcp.Tool, h mcp.ToolHandler) {
	if g.mgmt == nil {
		g.mgmt = map[string]mgmtTool{}
	}
	g.mgmt[t.Name] = mgmtTool{def: t, handler: h}
}

func (g *Gateway) addManagementTools() {
	g.addTool(&mcp.Tool{Name: "hangar_call", InputSchema: schemaCall,
		Description: "Invoke tools on MCP servers or groups, one call or a parallel batch (up to 100). " +
			"Groups route to a healthy member and fail over inside the call."}, g.hangarCall)
	g.addTool(&mcp.Tool{Name: "hangar_list", InputSchema: schemaList, Annotations: readOnly(),
		Description: "List MCP servers and groups with their state and tool counts."}, g.hangarList)
	g.addTool(&mcp.Tool{Name: "hangar_status", InputSchema: schemaNone, Annotations: readOnly(),
		Description: "Health dashboard of every MCP server and group."}, g.hangarStatus)
	g.addTool(&mcp.Tool{Name: "hangar_details", InputSchema: schemaServerID, Annotations: readOnly(),
		Description: "Details of one MCP server or group: health, rotation, breaker, members."}, g.hangarDetails)
	g.addTool(&mcp.Tool{Name: "hangar_tools", InputSchema: schemaServerID, Annotations: readOnly(),
		Description: "List the tools of an MCP server or group."}, g.hangarTools)
	g.addTool(&mcp.Tool{Name: "hangar_health", InputSchema: schemaNone, Annotations: readOnly(),
		Description: "System-wide health summary."}, g.hangarHealth)
	g.addTool(&mcp.Tool{Name: "hangar_group_list", InputSchema: schemaNone, Annotations: readOnly(),
		Description: "List groups with members, rotation, priorities and breaker state."}, g.hangarGroupList)
}

func (g *Gateway) hangarList(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct {
		StateFilter string `json:"state_filter"`
	}
	if err := decodeArgs(req.Params.Arguments, &in); err != nil {
		return nil, err
	}
	servers := []router.ServerStatus{}
	for _, s := range g.r().Servers() {
		if in.StateFilter == "" || s.State == in.StateFilter {
			servers = append(servers, s)
		}
	}
	type groupEntry struct {
		ID           string `json:"group_id"`
		State        string `json:"state"`
		Strategy     string `json:"strategy"`
		HealthyCount int    `json:"healthy_count"`
		TotalMembers int    `json:"total_members"`
	}
	groups := []groupEntry{}
	for _, gr := range g.r().Groups() {
		groups = append(groups, groupEntry{gr.ID, gr.State, gr.Strategy, gr.HealthyCount, gr.TotalMembers})
	}
	return jsonResult(map[string]any{"mcp_servers": servers, "groups": groups, "runtime_mcp_servers": []any{}}, false)
}

func indicator(state string) string {
	if state == "initializing" {
		return "[STARTING]"
	}
	return "[" + strings.ToUpper(state) + "]"
}

func (g *Gateway) hangarStatus(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	type serverEntry struct {
		ID        string `json:"id"`
		Indicator string `json:"indicator"`
		State     string `json:"state"`
		Mode      string `json:"mode"`
	}
	type groupEntry struct {
		ID             string `json:"id"`
		Indicator      string `json:"indicator"`
		State          string `json:"state"`
		HealthyMembers int    `json:"healthy_members"`
		TotalMembers   int    `json:"total_members"`
		Breaker        string `json:"circuit_breaker_state"`
		ActiveMember   string `json:"active_member,omitempty"`
	}
	var lines []string
	servers, healthy := []serverEntry{}, 0
	for _, s := range g.r().Servers() {
		servers = append(servers, serverEntry{s.ID, indicator(s.State), s.State, s.Mode})
		if s.State == "ready" {
			healthy++
		}
		lines = append(lines, fmt.Sprintf("%s %s (%s, %d tools)", indicator(s.State), s.ID, s.Mode, s.ToolsCount))
	}
	groups := []groupEntry{}
	for _, gr := range g.r().Groups() {
		groups = append(groups, groupEntry{gr.ID, indicator(gr.State), gr.State, gr.HealthyCount, gr.TotalMembers, gr.Breaker, gr.ActiveMember})
		line := fmt.Sprintf("%s %s (group %s, %d/%d in rotation, breaker %s", indicator(gr.State), gr.ID, gr.Strategy, gr.HealthyCount, gr.TotalMembers, gr.Breaker)
		if gr.ActiveMember != "" {
			line += ", active " + gr.ActiveMember
		}
		lines = append(lines, line+")")
	}
	up := time.Since(g.started).Truncate(time.Second)
	return jsonResult(map[string]any{
		"mcp_servers":         servers,
		"groups":              groups,
		"runtime_mcp_servers": []any{},
		"summary": map[string]any{
			"healthy_mcp_servers": healthy,
			"total_mcp_servers":   len(servers),
			"uptime":              up.String(),
			"uptime_seconds":      up.Seconds(),
		},
		"formatted": strings.Join(lines, "\n"),
	}, false)
}

func (g *Gateway) hangarDetails(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, err := serverArg(req)
	if err != nil {
		return nil, err
	}
	if gs, ok := g.r().GroupStatus(id); ok {
		return jsonResult(gs, false)
	}
	m, ok := g.r().Member(id)
	if !ok {
		return nil, unknown(id)
	}
	st := m.Status()
	return jsonResult(map[string]any{
		"mcp_server": st.ID, "state": st.State, "mode": st.Mode, "alive": st.Alive,
		"description": st.Description, "tools": toolSummaries(m.Tools()),
		"health": map[string]any{
			"consecutive_failures": st.ConsecutiveFailures, "last_check": st.LastCheck,
			"last_check_ok": st.LastCheckOK, "last_error": st.LastError,
		},
		"in_flight": st.InFlight,
	}, false)
}

func (g *Gateway) hangarTools(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, err := serverArg(req)
	if err != nil {
		return nil, err
	}
	if gs, ok := g.r().GroupStatus(id); ok {
		// A group offers what its active (or first in-rotation) member offers.
		for _, ms := range gs.Members {
			if m, _ := g.r().Member(ms.ID); m != nil && (ms.ID == gs.ActiveMember || gs.ActiveMember == "") && len(m.Tools()) > 0 {
				return jsonResult(map[string]any{"mcp_server": id, "state": gs.State, "group": true, "tools": m.Tools()}, false)
			}
		}
		return nil, fmt.Errorf("no_healthy_members_in_group: %s: no member has listed its tools yet", id)
	}
	m, ok := g.r().Member(id)
	if !ok {
		return nil, unknown(id)
	}
	return jsonResult(map[string]any{"mcp_server": id, "state": m.State().String(), "predefined": false, "tools": m.Tools()}, false)
}

func (g *Gateway) hangarHealth(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	byState := map[string]int{}
	servers := g.r().Servers()
	for _, s := range servers {
		byState[s.State]++
	}
	groupsByState := map[string]int{}
	total, healthy := 0, 0
	groups := g.r().Groups()
	for _, gr := range groups {
		groupsByState[gr.State]++
		total += gr.TotalMembers
		healthy += gr.HealthyCount
	}
	status := "healthy"
	if byState["degraded"]+byState["dead"] > 0 || groupsByState["degraded"]+groupsByState["inactive"]+groupsByState["partial"] > 0 {
		status = "degraded"
	}
	return jsonResult(map[string]any{
		"status":      status,
		"mcp_servers": map[string]any{"total": len(servers), "by_state": byState},
		"groups":      map[string]any{"total": len(groups), "by_state": groupsByState, "total_members": total, "healthy_members": healthy},
	}, false)
}

func (g *Gateway) hangarGroupList(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	groups := g.r().Groups()
	if groups == nil {
		groups = []router.GroupStatus{}
	}
	return jsonResult(map[string]any{"groups": groups}, false)
}

func toolSummaries(tools []*mcp.Tool) []map[string]string {
	out := []map[string]string{}
	for _, t := range tools {
		out = append(out, map[string]string{"name": t.Name, "description": t.Description})
	}
	return out
}

func serverArg(req *mcp.CallToolRequest) (string, error) {
	var in struct {
		MCPServer string `json:"mcp_server"`
	}
	if err := decodeArgs(req.Params.Arguments, &in); err != nil {
		return "", err
	}
	if in.MCPServer == "" {
		return "", invalidParams("mcp_server is required")
	}
	return in.MCPServer, nil
}

func unknown(id string) error {
	return invalidParams(fmt.Sprintf("unknown_mcp_server: %s (hangar_list shows the servers and groups)", id))
}
