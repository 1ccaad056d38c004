package fleetfile

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of a group entry (docs/design.md §2).
const (
	DefaultStrategy           = StrategyRoundRobin
	DefaultMinHealthy         = 1
	DefaultUnhealthyThreshold = 2
	DefaultHealthyThreshold   = 1
	DefaultQuorum             = 0.5
	DefaultProbers            = 2
	DefaultBaseEjection       = 5 * time.Second
	DefaultMaxEjection        = 60 * time.Second
	DefaultConfirmTimeout     = time.Second
	DefaultFailureThreshold   = 10
	DefaultResetTimeout       = 60 * time.Second
	DefaultProbeCount         = 1
	DefaultMaxAttempts        = 2
	DefaultPriority           = 1
	DefaultWeight             = 1
)

// Strategies lists the strategies a group may name, in documentation order.
var Strategies = []Strategy{StrategyPriority, StrategyRoundRobin, StrategyWeightedRoundRobin,
	StrategyLeastConnections, StrategyRandom}

// groupParse is a group being built, with what the second pass needs.
type groupParse struct {
	group         *Group
	members       []memberRef
	toolAccessSet bool
}

// memberRef is one members[i] entry and where it was written.
type memberRef struct {
	id       string
	priority int
	weight   int
	line     int    // line of the id value
	path     string // path of the id value
	inline   *Server
}

func (p *parser) group(id string, e pair, pairs []pair, fp *fleetParse) {
	g := &Group{
		ID:         id,
		Strategy:   DefaultStrategy,
		MinHealthy: DefaultMinHealthy,
		Health: GroupHealth{
			UnhealthyThreshold: DefaultUnhealthyThreshold,
			HealthyThreshold:   DefaultHealthyThreshold,
			Quorum:             DefaultQuorum,
			Probers:            DefaultProbers,
			BaseEjection:       DefaultBaseEjection,
			MaxEjection:        DefaultMaxEjection,
			ConfirmTimeout:     DefaultConfirmTimeout,
		},
		CircuitBreaker: CircuitBreaker{
			FailureThreshold: DefaultFailureThreshold,
			ResetTimeout:     DefaultResetTimeout,
			ProbeCount:       DefaultProbeCount,
		},
		Failover: Failover{MaxAttempts: DefaultMaxAttempts},
	}
	gp := &groupParse{group: g}
	var minHealthy, members *pair
	for i, pr := range pairs {
		switch pr.key {
		case "description":
			g.Description, _ = p.str(pr)
		case "strategy":
			if s, ok := p.strategy(pr); ok {
				g.Strategy = s
			}
		case "min_healthy":
			if v, ok := p.integer(pr, 0, noMax); ok {
				g.MinHealthy, minHealthy = v, &pairs[i]
			}
		case "members":
			p.members(pr, gp, fp)
			members = &pairs[i]
		case "health":
			p.groupHealth(pr, &g.Health)
		case "circuit_breaker":
			p.circuitBreaker(pr, &g.CircuitBreaker)
		case "failover":
			p.failover(pr, &g.Failover)
		case "tool_access":
			gp.toolAccessSet = p.groupToolAccess(pr, &g.ToolAccess)
		case "auto_start":
			p.boolean(pr) // checked and not used: members connect lazily or on the first probe
		}
	}
	if members == nil {
		p.errorf(e.keyN.Line, joinPath(e.path, "members"), "missing: a group needs a members list, e.g. [{id: my-mcp}]")
	}
	if minHealthy != nil && g.MinHealthy > len(gp.members) {
		p.errorf(resolveLine(*minHealthy), minHealthy.path, "%d is more than the group's %d members", g.MinHealthy, len(gp.members))
	}
	for _, m := range gp.members {
		g.Members = append(g.Members, Member{ID: m.id, Priority: m.priority, Weight: m.weight})
	}
	fp.fleet.Groups[id] = g
	fp.groups = append(fp.groups, gp)
}

func (p *parser) strategy(pr pair) (Strategy, bool) {
	s, ok := p.str(pr)
	if !ok {
		return "", false
	}
	names := make([]string, len(Strategies))
	for i, st := range Strategies {
		if Strategy(s) == st {
			return st, true
		}
		names[i] = string(st)
	}
	hint := ""
	if m := suggest(s, names); m != "" {
		hint = " (did you mean \"" + m + "\"?)"
	}
	p.errorf(resolveLine(pr), pr.path, "unknown strategy %q%s; valid strategies: %s", s, hint, strings.Join(names, ", "))
	return "", false
}

var memberKeys = []string{"id", "priority", "weight"}

// members reads a group's members. An entry with server keys besides id,
// priority and weight defines that server inline, as MCP Hangar allows.
func (p *parser) members(pr pair, gp *groupParse, fp *fleetParse) {
	items, ok := p.list(pr)
	if !ok {
		return
	}
	if len(items) == 0 {
		p.errorf(resolveLine(pr), pr.path, "empty: a group needs at least one member")
	}
	for _, it := range items {
		if m, ok := p.member(it, fp); ok {
			gp.members = append(gp.members, m)
		}
	}
}

// member reads one members[i] entry.
func (p *parser) member(it pair, fp *fleetParse) (memberRef, bool) {
	if n := resolve(it.val); n != nil && n.Kind == yaml.ScalarNode {
		p.errorf(resolveLine(it), it.path, "expected a map like {id: %s}, got %s", n.Value, describe(n))
		return memberRef{}, false
	}
	pairs, ok := p.mapping(it)
	if !ok {
		return memberRef{}, false
	}
	m := memberRef{priority: DefaultPriority, weight: DefaultWeight}
	var inline []pair
	hasID := false
	for _, f := range pairs {
		switch f.key {
		case "id":
			if id, ok := p.str(f); ok {
				hasID = true
				m.id, m.line, m.path = id, resolveLine(f), f.path
			}
		case "priority":
			if v, ok := p.integer(f, 1, 100); ok {
				m.priority = v
			}
		case "weight":
			if v, ok := p.integer(f, 1, 100); ok {
				m.weight = v
			}
		default:
			if reason, ok := unsupportedKeys[f.key]; ok {
				p.keyError(f, "%q: %s; remove it", f.key, reason)
			} else if _, known := entryKeys[f.key]; known || slices.Contains(dockerKeys, f.key) {
				inline = append(inline, f)
			} else {
				p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, memberKeys))
			}
		}
	}
	if !hasID {
		if _, hasKey := findPair(pairs, "id"); !hasKey {
			p.errorf(resolveLine(it), joinPath(it.path, "id"), "missing: each member needs the id of a server")
		}
		return memberRef{}, false
	}
	if !p.checkID(m.id, m.line, m.path) {
		return memberRef{}, false
	}
	if len(inline) > 0 {
		if m.inline = p.entryPairs(m.id, it, inline, fp, true); m.inline != nil {
			fp.fleet.Order = append(fp.fleet.Order, m.id)
		}
	}
	return m, true
}

func findPair(pairs []pair, key string) (pair, bool) {
	for _, pr := range pairs {
		if pr.key == key {
			return pr, true
		}
	}
	return pair{}, false
}

func (p *parser) groupHealth(pr pair, h *GroupHealth) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	for _, f := range pairs {
		switch f.key {
		case "unhealthy_threshold":
			if v, ok := p.integer(f, 1, noMax); ok {
				h.UnhealthyThreshold = v
			}
		case "healthy_threshold":
			if v, ok := p.integer(f, 1, noMax); ok {
				h.HealthyThreshold = v
			}
		case "quorum":
			if v, ok := p.number(f); ok {
				if v <= 0 || v > 1 {
					p.errorf(resolveLine(f), f.path, "%s is out of range: must be more than 0 and at most 1", resolve(f.val).Value)
				} else {
					h.Quorum = v
				}
			}
		case "probers":
			if v, ok := p.integer(f, 1, noMax); ok {
				h.Probers = v
			}
		case "base_ejection_s":
			if v, ok := p.seconds(f, false); ok {
				h.BaseEjection = v
			}
		case "max_ejection_s":
			if v, ok := p.seconds(f, false); ok {
				h.MaxEjection = v
			}
		case "confirm_timeout_s":
			if v, ok := p.seconds(f, false); ok {
				h.ConfirmTimeout = v
			}
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key,
				[]string{"unhealthy_threshold", "healthy_threshold", "quorum", "probers",
					"base_ejection_s", "max_ejection_s", "confirm_timeout_s"}))
		}
	}
}

func (p *parser) circuitBreaker(pr pair, cb *CircuitBreaker) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	for _, f := range pairs {
		switch f.key {
		case "failure_threshold":
			if v, ok := p.integer(f, 1, noMax); ok {
				cb.FailureThreshold = v
			}
		case "reset_timeout_s":
			if v, ok := p.seconds(f, false); ok {
				cb.ResetTimeout = v
			}
		case "probe_count":
			if v, ok := p.integer(f, 1, noMax); ok {
				cb.ProbeCount = v
			}
		case "count_tool_errors":
			if v, ok := p.boolean(f); ok {
				cb.CountToolErrors = v
			}
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key,
				[]string{"failure_threshold", "reset_timeout_s", "probe_count", "count_tool_errors"}))
		}
	}
}

func (p *parser) failover(pr pair, fo *Failover) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	for _, f := range pairs {
		switch f.key {
		case "max_attempts":
			if v, ok := p.integer(f, 1, 10); ok {
				fo.MaxAttempts = v
			}
		case "retry_on":
			tools, ok := p.strList(f)
			if !ok {
				continue
			}
			for i, t := range tools {
				if j := slices.Index(tools[:i], t); j >= 0 {
					p.errorf(resolveLine(f), f.path, "tool %q is listed twice", t)
				}
			}
			fo.RetryOn = tools
		case "attempt_timeout_s":
			if v, ok := p.seconds(f, false); ok {
				fo.AttemptTimeout = v
			}
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, []string{"max_attempts", "retry_on", "attempt_timeout_s"}))
		}
	}
}

// groupToolAccess reads a group's tool_access and reports whether it set
// the mode.
func (p *parser) groupToolAccess(pr pair, ta *ToolAccess) bool {
	pairs, ok := p.mapping(pr)
	if !ok {
		return false
	}
	set := false
	for _, f := range pairs {
		if f.key != "mode" {
			if f.key == "member" {
				p.keyError(f, "per-tenant tool_access.member policies are not supported by Hangar; remove it")
				continue
			}
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, []string{"mode"}))
			continue
		}
		if m, ok := p.toolAccessMode(f); ok {
			ta.Mode, set = m, true
		}
	}
	return set
}

// toolAccessMode maps front_door to "front_door" and MCP Hangar's default
// egress to "" (tools reachable through hangar_call only).
func (p *parser) toolAccessMode(f pair) (string, bool) {
	s, ok := p.str(f)
	if !ok {
		return "", false
	}
	switch s {
	case "front_door":
		return s, true
	case "egress":
		return "", true
	}
	p.errorf(resolveLine(f), f.path, "unknown tool_access mode %q%s", s, didYouMean(s, []string{"front_door", "egress"}))
	return "", false
}

// resolveMembers is the second pass: it registers inline member servers,
// then checks every member against the whole file, so entries may come in
// any order.
func (p *parser) resolveMembers(fp *fleetParse) {
	inlineAt := map[string]int{}
	for _, gp := range fp.groups {
		for _, m := range gp.members {
			if m.inline == nil {
				continue
			}
			if line, top := fp.entries[m.id]; top {
				p.errorf(m.line, m.path, "%q is also defined at line %d: an inline member needs its own id "+
					"(or keep only id, priority and weight to use that entry)", m.id, line)
			} else if line, again := inlineAt[m.id]; again {
				p.errorf(m.line, m.path, "%q is already defined inline at line %d", m.id, line)
			} else {
				inlineAt[m.id] = m.line
				fp.fleet.Servers[m.id] = m.inline
			}
		}
	}
	ids := make([]string, 0, len(fp.fleet.Servers))
	for id := range fp.fleet.Servers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, gp := range fp.groups {
		seen := map[string]int{}
		for i, m := range gp.members {
			if j, dup := seen[m.id]; dup {
				p.errorf(m.line, m.path, "duplicate member %q (also members[%d])", m.id, j)
				continue
			}
			seen[m.id] = i
			if m.inline != nil || fp.skipped[m.id] {
				continue
			}
			if _, ok := fp.fleet.Groups[m.id]; ok {
				p.errorf(m.line, m.path, "%q is a group: a group cannot be a member of a group", m.id)
				continue
			}
			if _, ok := fp.fleet.Servers[m.id]; !ok {
				p.errorf(m.line, m.path, "unknown server %q%s", m.id, didYouMeanOnly(m.id, ids))
			}
		}
	}
}

// didYouMeanOnly is didYouMean without the list of valid words.
func didYouMeanOnly(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return " (did you mean \"" + s + "\"?)"
	}
	return ""
}
