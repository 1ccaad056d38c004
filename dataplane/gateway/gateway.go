// Package gateway is the agent's front door: a transparent MCP proxy
// (docs/design.md §3.1–3.2) serving stdio and Streamable HTTP clients. It
// offers MCP Hangar's management tools (hangar_call, hangar_list,
// hangar_status, hangar_details, hangar_tools, hangar_health,
// hangar_group_list) and, for groups with tool_access.mode front_door,
// everything the groups' members offer (tools, resources, prompts,
// completion, logging, and the members' requests to the client), with one
// upstream session per client session per member and failover built in.
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

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// Version is the agent version announced to clients.
var Version = "dev"

// Session limits' defaults (docs/design.md §3.2).
const (
	DefaultSessionIdle = 10 * time.Minute
	DefaultMaxSessions = 1000
)

// Options configure a Gateway. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// SessionIdle is how long an HTTP client session may go without a
	// request before it expires (its upstream sessions close).
	SessionIdle time.Duration
	// MaxSessions bounds the open HTTP client sessions; a new client beyond
	// it gets an error, existing ones are untouched.
	MaxSessions int
	// MaxRequestBytes bounds one HTTP request body (the agent's
	// --max-request-bytes; 0: DefaultMaxRequestBytes).
	MaxRequestBytes int64
}

// Gateway serves MCP clients on top of a Router. It is safe for concurrent use.
type Gateway struct {
	router  atomic.Pointer[router.Router]
	log     *slog.Logger
	clk     clock.Clock
	opts    Options
	started time.Time
	mgmt    map[string]mgmtTool

	mu        sync.Mutex
	frontDoor map[string]frontTool // exposed name → target, from the probes' tool lists
	sessions  map[*clientSession]struct{}
	http      map[string]*httpSession // HTTP client sessions by Mcp-Session-Id

	// discovered is set once the front-door members' first tool lists are
	// in (or discoveryWait passed); until then front-door methods wait for
	// them, so a client that lists tools right after starting the agent
	// sees the groups' tools.
	discovered atomic.Bool
}

// discoveryWait bounds how long the first front-door request waits for
// the members' first probes (a probe's own timeout).
const discoveryWait = 5 * time.Second

type frontTool struct {
	group, tool string
	def         string // JSON of the definition, to notice changes
}

// New builds the front door for r.
func New(r *router.Router, opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	g := &Gateway{log: opts.Logger, clk: opts.Clock, opts: opts, started: time.Now(),
		frontDoor: map[string]frontTool{}, sessions: map[*clientSession]struct{}{}, http: map[string]*httpSession{}}
	g.router.Store(r)
	g.addManagementTools()
	g.discovered.Store(!g.anyFrontDoor())
	return g
}

// awaitDiscovery holds the first front-door requests until the front-door
// members' tools are known (see discovered), at most discoveryWait.
func (g *Gateway) awaitDiscovery(ctx context.Context) {
	if g.discovered.Load() {
		return
	}
	settled := g.waitFirstProbes(ctx)
	g.SyncTools()
	if settled {
		g.discovered.Store(true)
	}
}

// Ready reports whether every front_door group's tool list is known (or
// its members' first probes failed): until then /health/ready is 503.
func (g *Gateway) Ready() bool {
	if g.discovered.Load() {
		return true
	}
	if g.firstProbesDone() {
		g.SyncTools()
		g.discovered.Store(true)
		return true
	}
	return false
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
			if !ok || fleet.Servers[spec.ID].Mode != fleetfile.ModeRemote || m.Tools() != nil {
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

// Router returns the router in force (nil before the first one).
func (g *Gateway) Router() *router.Router { return g.r() }

// SetRouter replaces the router (a new fleet configuration): calls that
// start from now on use r; calls in flight finish on the old one. The
// front-door tools follow at the next sync.
func (g *Gateway) SetRouter(r *router.Router) {
	g.router.Store(r)
	g.SyncTools()
}

// Run keeps the front-door catalog in step with the groups' upstream
// tools and expires idle HTTP client sessions until ctx ends; then it
// closes every client session.
// (A fleet without front_door groups makes a sync a cheap no-op.)
func (g *Gateway) Run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		g.SyncTools()
		g.expire()
		select {
		case <-ctx.Done():
			g.closeAll()
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

// SyncTools updates the front-door catalog (the names each group's members
// offer, from their probes) and tells the clients when it changed. A tool
// whose name is offered by two groups, or clashes with a management tool,
// is exposed as group__tool. Clients' own tools/list asks the members.
func (g *Gateway) SyncTools() {
	want := g.wantedTools()
	g.mu.Lock()
	had := len(g.frontDoor) > 0
	changed := len(want) != len(g.frontDoor)
	for name, w := range want {
		if have, ok := g.frontDoor[name]; !ok || have.def != w.ft.def {
			changed = true
			if !ok {
				g.log.Info("front_door_tool_added", "tool", name, "group", w.ft.group)
			}
		}
	}
	if changed {
		g.frontDoor = make(map[string]frontTool, len(want))
		for name, w := range want {
			g.frontDoor[name] = w.ft
		}
	}
	g.mu.Unlock()
	if changed && had {
		g.broadcast("notifications/tools/list_changed")
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

func byPriority(ms []fleetfile.Member) []fleetfile.Member {
	out := slices.Clone(ms)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
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
