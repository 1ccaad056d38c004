// Package gateway is the agent's front door: an MCP server (stdio or
// Streamable HTTP) offering MCP Hangar's management tools (hangar_call,
// hangar_list, hangar_status, hangar_details, hangar_tools, hangar_health,
// hangar_group_list) and, for groups with tool_access.mode front_door, the
// groups' upstream tools as ordinary MCP tools with failover built in.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/config"
	"github.com/hangarmesh/hangar/dataplane/router"
)

// Version is the agent version announced to clients.
var Version = "dev"

// Gateway serves MCP clients on top of a Router. It is safe for concurrent use.
type Gateway struct {
	router  atomic.Pointer[router.Router]
	log     *slog.Logger
	server  *mcp.Server
	started time.Time

	mu        sync.Mutex
	frontDoor map[string]frontTool // exposed name → target

	// discovered is set once the front-door members' first tool lists are
	// in (or discoveryWait passed); until then tools/list and tools/call
	// wait for them, so a client that lists tools right after starting the
	// agent sees the groups' tools.
	discovered atomic.Bool
}

// discoveryWait bounds how long the first tools/list or tools/call waits for
// the front-door members' first probes (a probe's own timeout).
const discoveryWait = 5 * time.Second

type frontTool struct {
	group, tool string
	def         string // JSON of the definition, to notice changes
}

// New builds the front door for r.
func New(r *router.Router, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{log: log, started: time.Now(), frontDoor: map[string]frontTool{}}
	g.router.Store(r)
	g.server = mcp.NewServer(&mcp.Implementation{Name: "hangar-agent", Version: Version}, &mcp.ServerOptions{
		Instructions: "Hangar routes tool calls to MCP servers and groups with health checks and failover. " +
			"Use hangar_list to see servers and groups, hangar_call to call their tools.",
	})
	g.addManagementTools()
	g.discovered.Store(!g.anyFrontDoor())
	g.server.AddReceivingMiddleware(g.awaitDiscovery)
	return g
}

// awaitDiscovery holds the first tools/list and tools/call until the
// front-door tools are known (see discovered).
func (g *Gateway) awaitDiscovery(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if !g.discovered.Load() && (method == "tools/list" || method == "tools/call" && !isManagementCall(req)) {
			settled := g.waitFirstProbes(ctx)
			g.SyncTools()
			if settled {
				g.discovered.Store(true)
			}
		}
		return next(ctx, method, req)
	}
}

func isManagementCall(req mcp.Request) bool {
	r, ok := req.(*mcp.CallToolRequest)
	return ok && r.Params != nil && slices.Contains(managementTools, r.Params.Name)
}

// waitFirstProbes waits, at most discoveryWait, until every remote member of
// a front_door group has listed its tools or failed its first probe.
// Subprocess members are not waited for: no probe starts an idle child.
// It returns false if ctx ended first.
func (g *Gateway) waitFirstProbes(ctx context.Context) bool {
	wctx, cancel := context.WithTimeout(ctx, discoveryWait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !g.firstProbesDone() {
		select {
		case <-wctx.Done():
			return ctx.Err() == nil
		case <-t.C:
		}
	}
	return true
}

func (g *Gateway) firstProbesDone() bool {
	fleet := g.r().Fleet()
	for _, gr := range fleet.Groups {
		if gr.ToolAccess.Mode != "front_door" {
			continue
		}
		for _, spec := range gr.Members {
			m, ok := g.r().Member(spec.ID)
			if !ok || fleet.Servers[spec.ID].Mode != config.ModeRemote || m.Tools() != nil {
				continue
			}
			if m.Status().LastCheck == nil {
				return false
			}
		}
	}
	return true
}

// r returns the router in force.
func (g *Gateway) r() *router.Router { return g.router.Load() }

// SetRouter replaces the router (a new fleet configuration): calls that
// start from now on use r; calls in flight finish on the old one. The
// front-door tools follow at the next sync.
func (g *Gateway) SetRouter(r *router.Router) {
	g.router.Store(r)
	g.SyncTools()
}

// Server returns the MCP server, for a transport to run.
func (g *Gateway) Server() *mcp.Server { return g.server }

// Run keeps the front-door tool list in step with the groups' upstream
// tools until ctx ends.
// (A fleet without front_door groups makes a sync a cheap no-op.)
func (g *Gateway) Run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		g.SyncTools()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (g *Gateway) anyFrontDoor() bool {
	for _, gr := range g.r().Fleet().Groups {
		if gr.ToolAccess.Mode == "front_door" {
			return true
		}
	}
	return false
}

// SyncTools adds, updates and removes front-door tools to match what the
// members of front_door groups offer now. A tool whose name is offered by
// two groups, or clashes with a management tool, is exposed as group__tool.
func (g *Gateway) SyncTools() {
	want := g.wantedTools()
	g.mu.Lock()
	defer g.mu.Unlock()
	var remove []string
	for name := range g.frontDoor {
		if _, ok := want[name]; !ok {
			remove = append(remove, name)
			delete(g.frontDoor, name)
		}
	}
	if len(remove) > 0 {
		g.server.RemoveTools(remove...)
	}
	for name, w := range want {
		if have, ok := g.frontDoor[name]; ok && have.def == w.ft.def {
			continue
		}
		g.frontDoor[name] = w.ft
		tool := *w.tool
		tool.Name = name
		target := w.ft
		g.server.AddTool(&tool, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return g.callFrontDoor(ctx, target, req.Params.Arguments)
		})
		g.log.Info("front_door_tool_added", "tool", name, "group", target.group)
	}
}

type wanted struct {
	ft   frontTool
	tool *mcp.Tool
}

func (g *Gateway) wantedTools() map[string]wanted {
	fleet := g.r().Fleet()
	byName := map[string][]wanted{}
	for _, id := range fleet.Order {
		gr, ok := fleet.Groups[id]
		if !ok || gr.ToolAccess.Mode != "front_door" {
			continue
		}
		seen := map[string]bool{}
		for _, spec := range byPriority(gr.Members) {
			m, ok := g.r().Member(spec.ID)
			if !ok {
				continue
			}
			for _, t := range m.Tools() {
				if seen[t.Name] {
					continue
				}
				seen[t.Name] = true
				def, _ := json.Marshal(t)
				byName[t.Name] = append(byName[t.Name], wanted{ft: frontTool{group: id, tool: t.Name, def: string(def)}, tool: t})
			}
		}
	}
	out := map[string]wanted{}
	for name, ws := range byName {
		if len(ws) == 1 && !strings.HasPrefix(name, "hangar_") {
			out[name] = ws[0]
			continue
		}
		for _, w := range ws {
			out[w.ft.group+"__"+name] = w
		}
	}
	return out
}

func byPriority(ms []config.Member) []config.Member {
	out := slices.Clone(ms)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
}

// callFrontDoor calls a group's tool for an ordinary MCP client: the
// upstream's result is returned as is; a failed call is a JSON-RPC error
// for protocol failures and an isError result naming the error type otherwise.
func (g *Gateway) callFrontDoor(ctx context.Context, t frontTool, args json.RawMessage) (*mcp.CallToolResult, error) {
	res, err := g.r().Call(ctx, t.group, t.tool, args, router.CallOptions{})
	if err != nil {
		if rpcErr, ok := callerError(err); ok {
			return nil, rpcErr
		}
		return failedResult(err), nil
	}
	return res.Result, nil
}

func jsonResult(v any, isError bool) (*mcp.CallToolResult, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: string(data)}},
		StructuredContent: json.RawMessage(data),
		IsError:           isError,
	}, nil
}
