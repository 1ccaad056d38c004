// Package router routes the agent's tool calls to upstream members: a call
// addressed to a server goes to it; a call addressed to a group goes to the
// best candidate member, failing over inside the call, behind the group's
// circuit breaker (docs/design.md §3.3–3.4). It owns every member's connection and
// health probes, and accepts a global view from the control plane.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// Options configure a Router. Zero values use the real clock, discard logs
// and observe nothing.
type Options struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Observer Observer
}

// Router is safe for concurrent use.
type Router struct {
	fleet   *fleetfile.Fleet
	clk     clock.Clock
	log     *slog.Logger
	obs     Observer
	members map[string]*Member
	groups  map[string]*Group
	global  atomic.Pointer[Global]
}

// New builds a router for a validated fleet. No connection is made until Run
// probes or a call arrives.
func New(fleet *fleetfile.Fleet, opts Options) (*Router, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	r := &Router{
		fleet:   fleet,
		clk:     opts.Clock,
		log:     opts.Logger,
		obs:     opts.Observer,
		members: make(map[string]*Member, len(fleet.Servers)),
		groups:  make(map[string]*Group, len(fleet.Groups)),
	}
	for id, s := range fleet.Servers {
		m, err := newMember(s, r.clk, r.log, r.obs)
		if err != nil {
			return nil, err
		}
		r.members[id] = m
	}
	for _, id := range fleet.Order {
		gc, ok := fleet.Groups[id]
		if !ok {
			continue
		}
		g, err := newGroup(gc, r.members, r.clk, r.log, r.obs)
		if err != nil {
			return nil, err
		}
		r.groups[id] = g
		if gc.ToolAccess.Mode == "front_door" {
			for _, gm := range g.members {
				gm.listTools = true
			}
		}
		r.log.Info("group_created", "group_id", id, "strategy", string(gc.Strategy), "members", len(gc.Members))
		for _, gm := range g.members {
			r.obs.Rotation(id, gm.ID(), true)
		}
		r.obs.Breaker(id, g.breaker.Status().State)
	}
	return r, nil
}

// Fleet returns the configuration the router serves.
func (r *Router) Fleet() *fleetfile.Fleet { return r.fleet }

// Run probes every member until ctx ends, then closes every connection
// (stopping subprocess children). It returns nil after a clean shutdown.
func (r *Router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, m := range r.members {
		wg.Go(func() { m.run(ctx) })
	}
	for _, g := range r.groups {
		wg.Go(func() { g.run(ctx) })
	}
	r.log.Info("background_worker_started", "task", "health_check", "members", len(r.members))
	wg.Wait()
	for _, m := range r.members {
		_ = m.client.Close()
		m.applyHealth(m.health.Kill())
	}
	return nil
}

// SetGlobal installs the control plane's view; nil returns to standalone.
func (r *Router) SetGlobal(g *Global) { r.global.Store(g) }

// Call calls tool on target, a server or a group id, with the raw JSON
// arguments. The returned error is a *CallError for every failure; a tool's
// own error (isError) is a result.
func (r *Router) Call(ctx context.Context, target, tool string, args json.RawMessage, opts CallOptions) (*Result, error) {
	return r.route(ctx, target, request{tool: tool, args: args}, opts)
}

// Relay sends a front-door request to target through send, which makes
// each attempt on a member; routing, failover, rotation and the breaker are
// Call's. name is the tool (tools/call) or the method, for metrics and
// failover.retry_on; args are a tool call's arguments, if any.
func (r *Router) Relay(ctx context.Context, target, name string, args json.RawMessage, send Sender, opts CallOptions) (*Result, error) {
	return r.route(ctx, target, request{tool: name, args: args, relay: send}, opts)
}

func (r *Router) route(ctx context.Context, target string, q request, opts CallOptions) (*Result, error) {
	start := r.clk.Now()
	res, class, err := r.dispatch(ctx, target, q, opts)
	rec := CallRecord{Target: target, Tool: q.tool, Class: class, ErrType: TypeOf(err), Duration: r.clk.Now().Sub(start),
		Session: opts.Session}
	if _, ok := r.groups[target]; ok {
		rec.Group = target
	}
	var ce *CallError
	switch {
	case res != nil:
		rec.Member, rec.Attempts = res.Member, res.Attempts
	case errors.As(err, &ce):
		rec.Member, rec.Attempts = ce.Member, ce.Attempts
	}
	r.obs.Call(rec)
	return res, err
}

func (r *Router) dispatch(ctx context.Context, target string, q request, opts CallOptions) (*Result, outcome.Class, error) {
	if g, ok := r.groups[target]; ok {
		return g.call(ctx, r.global.Load(), q, opts)
	}
	m, ok := r.members[target]
	if !ok {
		return nil, outcome.CallerError, &CallError{Type: ErrUnknownServer, Target: target,
			Msg: fmt.Sprintf("unknown mcp_server %q: hangar_list shows the servers and groups", target)}
	}
	if err := checkRequest(target, q, m); err != nil {
		return nil, outcome.CallerError, err
	}
	start := r.clk.Now()
	m.inFlight.Add(1)
	m.called()
	res, class, err := q.send(ctx, m.client, opts.SafeToRepeat || annotatedSafe(m.client, q.tool))
	m.inFlight.Add(-1)
	r.obs.Attempt("", m.ID(), q.tool, class, r.clk.Now().Sub(start))
	if err != nil {
		return nil, class, &CallError{Type: errorTypeOf(class), Target: target, Msg: "call failed", Err: err, Member: m.ID(), Attempts: 1}
	}
	res.Member, res.Attempts = m.ID(), 1
	return res, class, nil
}

// Member returns a member by server id.
func (r *Router) Member(id string) (*Member, bool) {
	m, ok := r.members[id]
	return m, ok
}

// Group returns a group by id.
func (r *Router) Group(id string) (*Group, bool) {
	g, ok := r.groups[id]
	return g, ok
}
