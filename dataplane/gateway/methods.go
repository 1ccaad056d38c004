package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/dataplane/upstream"
)

// Protocol versions the front door relays, oldest first. 2026-07-28
// (stateless, SEP-2575) is not offered: a client asking for it gets the
// newest of these.
var protocolVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

func supportedVersion(v string) bool { return slices.Contains(protocolVersions, v) }

var errUnknownMethod = func(method string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("method %q is not supported by this agent", method)}
}

// dispatch answers one client request.
func (cs *clientSession) dispatch(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	switch req.Method {
	case "initialize":
		return cs.initialize(ctx, req.Params)
	case "ping":
		return json.RawMessage(`{}`), nil
	case "tools/list":
		return cs.listTools(ctx)
	case "tools/call":
		return cs.callTool(ctx, req)
	case "resources/list":
		return cs.listMerged(ctx, req.Method, "resources")
	case "resources/templates/list":
		return cs.listMerged(ctx, req.Method, "resourceTemplates")
	case "prompts/list":
		return cs.listMerged(ctx, req.Method, "prompts")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return cs.byURI(ctx, req)
	case "prompts/get":
		return cs.getPrompt(ctx, req)
	case "completion/complete":
		return cs.complete(ctx, req)
	case "logging/setLevel":
		return cs.setLevel(ctx, req)
	}
	return nil, errUnknownMethod(req.Method)
}

// initialize negotiates the protocol version and records the client's
// params for its upstream sessions. The answer declares what the agent
// relays for the members it exposes, with their instructions.
func (cs *clientSession) initialize(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil || p == nil {
		return nil, invalidParams("initialize params must be an object")
	}
	var asked string
	_ = json.Unmarshal(p["protocolVersion"], &asked)
	version := asked
	if !supportedVersion(version) {
		version = protocolVersions[len(protocolVersions)-1]
		p["protocolVersion"], _ = json.Marshal(version)
		params, _ = json.Marshal(p)
	}
	cs.mu.Lock()
	cs.init = params
	cs.mu.Unlock()
	cs.g.awaitDiscovery(ctx)
	caps, instructions := cs.g.exposed()
	out := map[string]any{
		"protocolVersion": version,
		"capabilities":    caps,
		"serverInfo":      map[string]string{"name": "hangar-agent", "version": Version},
	}
	if instructions != "" {
		out["instructions"] = instructions
	}
	return json.Marshal(out)
}

// exposed returns the capabilities the agent declares (tools always, for
// the management tools; logging, since it relays the members' logs; what
// the front_door members declare) and the members' instructions, prefixed
// by group when there are several front_door groups.
func (g *Gateway) exposed() (map[string]any, string) {
	caps := map[string]any{"tools": map[string]bool{"listChanged": true}, "logging": map[string]any{}}
	groups := g.frontDoorGroups()
	var notes []string
	for _, group := range groups {
		note := ""
		for _, spec := range byPriority(g.r().Fleet().Groups[group].Members) {
			m, ok := g.r().Member(spec.ID)
			if !ok {
				continue
			}
			info := m.Info()
			if info == nil || info.Capabilities == nil {
				continue
			}
			c := info.Capabilities
			if c.Resources != nil {
				res, _ := caps["resources"].(map[string]bool)
				if res == nil {
					res = map[string]bool{"listChanged": true}
				}
				res["subscribe"] = res["subscribe"] || c.Resources.Subscribe
				caps["resources"] = res
			}
			if c.Prompts != nil {
				caps["prompts"] = map[string]bool{"listChanged": true}
			}
			if c.Completions != nil {
				caps["completions"] = map[string]any{}
			}
			if note == "" && info.Instructions != "" {
				note = info.Instructions
			}
		}
		if note != "" {
			if len(groups) > 1 {
				note = "[" + group + "] " + note
			}
			notes = append(notes, note)
		}
	}
	return caps, strings.Join(notes, "\n\n")
}

// frontDoorGroups lists the front_door groups in configuration order.
func (g *Gateway) frontDoorGroups() []string {
	fleet := g.r().Fleet()
	var out []string
	for _, id := range fleet.Order {
		if gr, ok := fleet.Groups[id]; ok && gr.ToolAccess.Mode == "front_door" {
			out = append(out, id)
		}
	}
	return out
}

// listAll relays a list method to group page by page and returns every
// item under key. The client gets one page: cursors are the members' own
// and would not survive a failover to another member.
func (cs *clientSession) listAll(ctx context.Context, group, method, key string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	cursor := ""
	for range 100 {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		reply, err := cs.relay(ctx, group, method, params, method, nil, jsonrpc.ID{}, true)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(reply.Result, &page); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", method, group, err)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(page[key], &got); err != nil && len(page[key]) > 0 {
			return nil, fmt.Errorf("%s of %s: %w", method, group, err)
		}
		items = append(items, got...)
		cursor = ""
		_ = json.Unmarshal(page["nextCursor"], &cursor)
		if cursor == "" {
			break
		}
	}
	return items, nil
}

// named is a list item with the field that routes it.
type named struct {
	Name string `json:"name"`
	URI  string `json:"uri"`
}

// groupItems is one group's items of a list.
type groupItems struct {
	group string
	items []json.RawMessage
}

// collect lists method on every front_door group. A group that cannot
// answer is left out of the list (and logged).
func (cs *clientSession) collect(ctx context.Context, method, key string) []groupItems {
	cs.g.awaitDiscovery(ctx)
	var out []groupItems
	for _, group := range cs.g.frontDoorGroups() {
		items, err := cs.listAll(ctx, group, method, key)
		if err != nil {
			if ctx.Err() == nil {
				cs.g.log.Warn("front_door_list_failed", "group", group, "method", method, "error", err.Error())
			}
			continue
		}
		out = append(out, groupItems{group, items})
	}
	return out
}

// exposeNames gives each named item its exposed name: its own, or
// group__name when two groups (or a management tool) use it. It rewrites
// the items that need a prefix and returns the routes.
func exposeNames(lists []groupItems, reserved func(string) bool) map[string]target {
	count := map[string]int{}
	for _, l := range lists {
		for _, it := range l.items {
			var n named
			_ = json.Unmarshal(it, &n)
			count[n.Name]++
		}
	}
	routes := map[string]target{}
	for _, l := range lists {
		for i, it := range l.items {
			var n named
			_ = json.Unmarshal(it, &n)
			name := n.Name
			if count[name] > 1 || reserved(name) {
				name = l.group + "__" + n.Name
				l.items[i] = withField(it, "name", name)
			}
			routes[name] = target{group: l.group, name: n.Name}
		}
	}
	return routes
}

// withField returns obj with one field replaced.
func withField(obj json.RawMessage, field string, value any) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return obj
	}
	m[field], _ = json.Marshal(value)
	out, err := json.Marshal(m)
	if err != nil {
		return obj
	}
	return out
}

func (cs *clientSession) listTools(ctx context.Context) (json.RawMessage, error) {
	lists := cs.collect(ctx, "tools/list", "tools")
	routes := exposeNames(lists, func(n string) bool { return strings.HasPrefix(n, "hangar_") })
	cs.mu.Lock()
	cs.routes.tools = routes
	cs.mu.Unlock()
	var tools []json.RawMessage
	for _, name := range managementTools {
		def, _ := json.Marshal(cs.g.mgmt[name].def)
		tools = append(tools, def)
	}
	for _, l := range lists {
		tools = append(tools, l.items...)
	}
	return json.Marshal(map[string]any{"tools": tools})
}

// listMerged answers resources/list, resources/templates/list and
// prompts/list with every front_door group's items.
func (cs *clientSession) listMerged(ctx context.Context, method, key string) (json.RawMessage, error) {
	lists := cs.collect(ctx, method, key)
	items := []json.RawMessage{}
	switch key {
	case "prompts":
		routes := exposeNames(lists, func(string) bool { return false })
		cs.mu.Lock()
		cs.routes.prompts = routes
		cs.mu.Unlock()
	case "resources":
		uris := map[string]string{}
		for _, l := range lists {
			for _, it := range l.items {
				var n named
				_ = json.Unmarshal(it, &n)
				if _, dup := uris[n.URI]; !dup {
					uris[n.URI] = l.group
				}
			}
		}
		cs.mu.Lock()
		cs.routes.resources = uris
		cs.mu.Unlock()
	}
	for _, l := range lists {
		items = append(items, l.items...)
	}
	return json.Marshal(map[string]any{key: items})
}

// toolTarget finds the group and member tool behind an exposed tool name:
// from the client's last tools/list, else the catalog.
func (cs *clientSession) toolTarget(name string) (target, bool) {
	cs.mu.Lock()
	t, ok := cs.routes.tools[name]
	cs.mu.Unlock()
	if ok {
		return t, true
	}
	if ft, ok := cs.g.frontDoorTool(name); ok {
		return target{group: ft.group, name: ft.tool}, true
	}
	if group, tool, ok := strings.Cut(name, "__"); ok && cs.g.isFrontDoor(group) {
		return target{group: group, name: tool}, true
	}
	if groups := cs.g.frontDoorGroups(); len(groups) == 1 && !strings.HasPrefix(name, "hangar_") {
		return target{group: groups[0], name: name}, true
	}
	return target{}, false
}

func (g *Gateway) isFrontDoor(group string) bool {
	gr, ok := g.r().Fleet().Groups[group]
	return ok && gr.ToolAccess.Mode == "front_door"
}

// callTool runs a management tool here or relays a front-door tool.
func (cs *clientSession) callTool(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	var p struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, invalidParams("tools/call params: " + err.Error())
	}
	if mt, ok := cs.g.mgmt[p.Name]; ok {
		return cs.g.runManagement(withSession(ctx, cs.id), mt, p.Name, p.Arguments)
	}
	cs.g.awaitDiscovery(ctx)
	t, ok := cs.toolTarget(p.Name)
	if !ok {
		return nil, invalidParams(fmt.Sprintf("unknown tool %q", p.Name))
	}
	params := req.Params
	if t.name != p.Name {
		params = withField(params, "name", t.name)
	}
	reply, err := cs.relay(ctx, t.group, "tools/call", params, t.name, p.Arguments, req.ID, false)
	if err != nil {
		if rpcErr, ok := callerError(err); ok {
			return nil, rpcErr
		}
		return json.Marshal(failedResult(err))
	}
	return reply.Result, nil
}

// runManagement runs a management tool the way the SDK would: a
// *jsonrpc.Error is the request's error, another error a tool error.
func (g *Gateway) runManagement(ctx context.Context, mt mgmtTool, name string, args json.RawMessage) (json.RawMessage, error) {
	res, err := mt.handler(ctx, &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: name, Arguments: args}})
	if err != nil {
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) {
			return nil, rpcErr
		}
		res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
	}
	return json.Marshal(res)
}

// toolFailed reads a raw result's isError flag.
func toolFailed(raw json.RawMessage) bool {
	if !bytes.Contains(raw, []byte(`"isError"`)) {
		return false
	}
	var f struct {
		IsError bool `json:"isError"`
	}
	_ = json.Unmarshal(raw, &f)
	return f.IsError
}

// uriGroup routes a resource URI: the group whose resources/list showed it,
// the group it is subscribed on, or the only front_door group. ok is false
// when several groups could hold it.
func (cs *clientSession) uriGroup(uri string) (string, bool) {
	cs.mu.Lock()
	group, ok := cs.routes.resources[uri]
	if !ok {
		group, ok = cs.subs[uri]
	}
	cs.mu.Unlock()
	if ok {
		return group, true
	}
	if groups := cs.g.frontDoorGroups(); len(groups) == 1 {
		return groups[0], true
	}
	return "", false
}

// byURI relays resources/read, subscribe and unsubscribe to the group that
// holds the URI, recording subscriptions for replay on other members.
func (cs *clientSession) byURI(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	var p struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil || p.URI == "" {
		return nil, invalidParams(req.Method + " needs a uri")
	}
	cs.g.awaitDiscovery(ctx)
	groups := cs.g.frontDoorGroups()
	if g, ok := cs.uriGroup(p.URI); ok {
		groups = []string{g}
	}
	if len(groups) == 0 {
		return nil, &jsonrpc.Error{Code: -32002, Message: "resource not found: no front_door group", Data: mustJSON(map[string]string{"uri": p.URI})}
	}
	var lastErr error
	for _, group := range groups {
		reply, err := cs.byURIOn(ctx, group, req)
		if err != nil {
			lastErr = err
			continue
		}
		cs.mu.Lock()
		switch req.Method {
		case "resources/subscribe":
			cs.subs[p.URI] = group
		case "resources/unsubscribe":
			delete(cs.subs, p.URI)
		}
		cs.mu.Unlock()
		return reply.Result, nil
	}
	return nil, lastErr
}

// byURIOn relays a by-URI request to group. An unsubscribe goes to the
// session holding the client's subscriptions there, when one is open.
func (cs *clientSession) byURIOn(ctx context.Context, group string, req *jsonrpc.Request) (*upstream.Reply, error) {
	if req.Method == "resources/unsubscribe" {
		if us := cs.subsHolder(group); us != nil {
			raw, err := us.Call(ctx, req.Method, req.Params, req.ID)
			switch {
			case err == nil:
				return &upstream.Reply{Result: raw}, nil
			case isRPC(err):
				return nil, err
			} // the holder broke: through the router, like any request
		}
	}
	return cs.relay(ctx, group, req.Method, req.Params, req.Method, nil, req.ID, req.Method == "resources/read")
}

func mustJSON(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	return data
}

// promptTarget routes a prompt name like toolTarget.
func (cs *clientSession) promptTarget(name string) (target, bool) {
	cs.mu.Lock()
	t, ok := cs.routes.prompts[name]
	cs.mu.Unlock()
	if ok {
		return t, true
	}
	if group, prompt, ok := strings.Cut(name, "__"); ok && cs.g.isFrontDoor(group) {
		return target{group: group, name: prompt}, true
	}
	if groups := cs.g.frontDoorGroups(); len(groups) == 1 {
		return target{group: groups[0], name: name}, true
	}
	return target{}, false
}

func (cs *clientSession) getPrompt(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, invalidParams("prompts/get params: " + err.Error())
	}
	cs.g.awaitDiscovery(ctx)
	t, ok := cs.promptTarget(p.Name)
	if !ok {
		return nil, invalidParams(fmt.Sprintf("unknown prompt %q (prompts/list shows them)", p.Name))
	}
	params := req.Params
	if t.name != p.Name {
		params = withField(params, "name", t.name)
	}
	reply, err := cs.relay(ctx, t.group, req.Method, params, req.Method, nil, req.ID, true)
	if err != nil {
		return nil, err
	}
	return reply.Result, nil
}

// complete routes completion/complete by its reference: a prompt by name,
// a resource template by URI.
func (cs *clientSession) complete(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	var p struct {
		Ref struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, invalidParams("completion/complete params: " + err.Error())
	}
	cs.g.awaitDiscovery(ctx)
	params := req.Params
	var group string
	switch p.Ref.Type {
	case "ref/prompt":
		t, ok := cs.promptTarget(p.Ref.Name)
		if !ok {
			return nil, invalidParams(fmt.Sprintf("unknown prompt %q", p.Ref.Name))
		}
		group = t.group
		if t.name != p.Ref.Name {
			var all map[string]json.RawMessage
			_ = json.Unmarshal(params, &all)
			all["ref"] = withField(all["ref"], "name", t.name)
			params, _ = json.Marshal(all)
		}
	default:
		g, ok := cs.uriGroup(p.Ref.URI)
		if !ok {
			return nil, invalidParams(fmt.Sprintf("no group lists the resource %q (resources/templates/list shows them)", p.Ref.URI))
		}
		group = g
	}
	reply, err := cs.relay(ctx, group, req.Method, params, req.Method, nil, req.ID, true)
	if err != nil {
		return nil, err
	}
	return reply.Result, nil
}

// setLevel records the client's log level (replayed on every member the
// client uses later) and sends it to the members it uses now.
func (cs *clientSession) setLevel(ctx context.Context, req *jsonrpc.Request) (json.RawMessage, error) {
	var p struct {
		Level string `json:"level"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil || p.Level == "" {
		return nil, invalidParams("logging/setLevel needs a level")
	}
	cs.mu.Lock()
	cs.level = req.Params
	cs.mu.Unlock()
	for _, us := range cs.open() {
		if _, err := us.Call(ctx, req.Method, req.Params, req.ID); err != nil && !isRPC(err) {
			cs.g.log.Debug("set_level_failed", "mcp_server", us.Member(), "error", err.Error())
		}
	}
	return json.RawMessage(`{}`), nil
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

// failedResult is what an ordinary MCP client gets for a failed front-door
// call: an isError result naming the error type (CircuitOpen,
// NoAvailableMemberError, …), so the model can read what happened.
func failedResult(err error) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s: %v", router.TypeOf(err), err)}},
	}
}
