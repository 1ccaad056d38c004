package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/dataplane/gateway"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// drainGrace is how long a replaced router keeps serving the calls it
// already started before its connections are closed.
const drainGrace = 30 * time.Second

// fleetRuntime owns the router serving the current fleet configuration
// and replaces it when the configuration changes; the state the control
// plane pushed (global view, probe assignment) carries over.
type fleetRuntime struct {
	ctx    context.Context // the routers' lifetime: ends in wait
	cancel context.CancelFunc
	log    *slog.Logger
	obs    router.Observer
	gwOpts gateway.Options // the front door's settings

	mu       sync.Mutex
	gw       *gateway.Gateway
	cur      *router.Router
	hash     string // of the configuration in force ("" for a local file)
	stop     context.CancelFunc
	global   *router.Global
	assigned []string // nil: probe everything
	wg       sync.WaitGroup
}

// newFleetRuntime returns a runtime whose routers outlive ctx until wait:
// on shutdown the front door drains its calls first, then the routers stop.
func newFleetRuntime(ctx context.Context, log *slog.Logger, obs router.Observer, gw gateway.Options) *fleetRuntime {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	gw.Logger = log
	return &fleetRuntime{ctx: rctx, cancel: cancel, log: log, obs: obs, gwOpts: gw}
}

// install starts a router for fleet and makes it the one in force; the
// previous one drains for drainGrace and stops.
func (rt *fleetRuntime) install(fleet *fleetfile.Fleet, hash string) error {
	r, err := router.New(fleet, router.Options{Logger: rt.log, Observer: rt.obs})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(rt.ctx)
	rt.mu.Lock()
	old, oldStop := rt.cur, rt.stop
	rt.cur, rt.stop, rt.hash = r, stop, hash
	if rt.global != nil {
		r.SetGlobal(rt.global)
	}
	if rt.assigned != nil {
		r.AssignProbes(rt.assigned)
	}
	if rt.gw == nil {
		rt.gw = gateway.New(r, rt.gwOpts)
	} else {
		rt.gw.SetRouter(r)
	}
	rt.mu.Unlock()
	rt.wg.Go(func() { _ = r.Run(ctx) })
	if old != nil {
		rt.log.Info("config_reloaded", "servers", len(fleet.Servers), "groups", len(fleet.Groups))
		rt.wg.Go(func() {
			select {
			case <-time.After(drainGrace):
			case <-rt.ctx.Done():
			}
			oldStop()
		})
	}
	return nil
}

// router returns the router in force (nil before the first install).
func (rt *fleetRuntime) router() *router.Router {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.cur
}

// gateway returns the front door (nil before the first install).
func (rt *fleetRuntime) gateway() *gateway.Gateway {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.gw
}

// setGlobal installs the control plane's view on the current router and
// any later one.
func (rt *fleetRuntime) setGlobal(g *router.Global) {
	rt.mu.Lock()
	rt.global = g
	r := rt.cur
	rt.mu.Unlock()
	if r != nil {
		r.SetGlobal(g)
	}
}

// assign sets the members this agent probes; nil means all of them.
func (rt *fleetRuntime) assign(members []string) {
	rt.mu.Lock()
	rt.assigned = members
	r := rt.cur
	rt.mu.Unlock()
	if r == nil {
		return
	}
	if members == nil {
		r.ProbeAll()
	} else {
		r.AssignProbes(members)
	}
}

// configHash returns the hash of the configuration in force.
func (rt *fleetRuntime) configHash() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.hash
}

// wait stops every router and waits for them; call it after the front
// door has stopped.
func (rt *fleetRuntime) wait() {
	rt.cancel()
	rt.wg.Wait()
}
