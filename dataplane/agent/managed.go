package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/hangarmesh/hangar/dataplane/controlclient"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	"github.com/hangarmesh/hangar/internal/grpccred"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// managedAgent is the agent as the control-plane client drives it: it
// applies snapshots (the global view and, when the agent has no local
// fleet file, the fleet configuration), probe assignments, and falls back
// to local decisions when no replica answers (docs/design.md §3.5).
type managedAgent struct {
	rt    *fleetRuntime
	local bool // the fleet comes from --config, not from snapshots

	mu        sync.Mutex
	last      *hangarv1.Snapshot
	resets    map[string]uint64 // breaker resets seen, by group
	installed chan struct{}     // closed once a fleet configuration runs
	once      sync.Once
}

func newManagedAgent(rt *fleetRuntime, local bool) *managedAgent {
	a := &managedAgent{rt: rt, local: local, installed: make(chan struct{})}
	if local {
		a.markInstalled()
	}
	return a
}

func (a *managedAgent) markInstalled() { a.once.Do(func() { close(a.installed) }) }

// ApplySnapshot implements controlclient.Agent.
func (a *managedAgent) ApplySnapshot(s *hangarv1.Snapshot) error {
	if !a.local && len(s.GetFleetConfig()) > 0 && s.GetConfigHash() != a.rt.configHash() {
		fleet, err := fleetfile.ParseAs(fleetfile.Agent, "control-plane snapshot", s.GetFleetConfig())
		if err != nil {
			return fmt.Errorf("fleet configuration of snapshot %d: %w", s.GetVersion(), err)
		}
		if err := a.rt.install(fleet, s.GetConfigHash()); err != nil {
			return err
		}
	}
	if a.rt.router() == nil {
		return fmt.Errorf("snapshot %d carries no fleet configuration and the agent has none (start it with --config)", s.GetVersion())
	}
	a.rt.setGlobal(globalOf(s, false))
	a.mu.Lock()
	first := a.last == nil
	a.last = s
	var reset []string
	for _, gs := range s.GetGroups() {
		if n := gs.GetBreakerReset(); n > a.resets[gs.GetId()] {
			if !first {
				reset = append(reset, gs.GetId())
			}
			if a.resets == nil {
				a.resets = map[string]uint64{}
			}
			a.resets[gs.GetId()] = n
		}
	}
	a.mu.Unlock()
	// An operator reset a breaker since the last snapshot (the first one
	// only tells how many resets happened before this agent started).
	for _, g := range reset {
		a.rt.router().ResetBreaker(g)
	}
	a.markInstalled()
	return nil
}

// AssignProbes implements controlclient.Agent.
func (a *managedAgent) AssignProbes(members []string) {
	if members == nil {
		members = []string{}
	}
	a.rt.assign(members)
}

// Detach implements controlclient.Agent: probe everything and decide
// rotation locally; only operators' drains stay in force.
func (a *managedAgent) Detach() {
	a.rt.assign(nil)
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
	if last != nil {
		a.rt.setGlobal(globalOf(last, true))
	}
}

// LocalView implements controlclient.Agent.
func (a *managedAgent) LocalView() ([]router.MemberView, []router.GroupView) {
	if r := a.rt.router(); r != nil {
		return r.LocalView()
	}
	return nil, nil
}

// Confirm implements controlclient.Confirmer: the control plane's
// confirmation probe of a member another agent ejected.
func (a *managedAgent) Confirm(ctx context.Context, member string, deadline time.Duration) error {
	r := a.rt.router()
	if r == nil {
		return errors.New("no fleet configuration yet")
	}
	return r.Confirm(ctx, member, deadline)
}

// Servers implements controlclient.Agent.
func (a *managedAgent) Servers() []string {
	r := a.rt.router()
	if r == nil {
		return nil
	}
	var out []string
	for _, id := range r.Fleet().Order {
		if _, ok := r.Fleet().Servers[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// globalOf turns a snapshot into the router's global view. drainsOnly
// keeps just the drains (the control plane is gone: its rotation and
// breaker opinions go stale, local probes decide).
func globalOf(s *hangarv1.Snapshot, drainsOnly bool) *router.Global {
	g := &router.Global{Version: s.GetVersion(), Drained: map[string][]string{}}
	if !drainsOnly {
		g.Rotation, g.BreakerOpen = map[string][]string{}, map[string]bool{}
	}
	for _, gs := range s.GetGroups() {
		if len(gs.GetDrained()) > 0 {
			g.Drained[gs.GetId()] = gs.GetDrained()
		}
		if drainsOnly {
			continue
		}
		g.Rotation[gs.GetId()] = gs.GetRotation()
		if gs.GetBreaker() == hangarv1.BreakerState_BREAKER_STATE_OPEN {
			g.BreakerOpen[gs.GetId()] = true
		}
	}
	return g
}

// dialOptions builds the credentials for the control plane: TLS (with a
// client certificate for mTLS) or plaintext on loopback (or --cp-insecure),
// a bearer token if configured, and keepalives to notice a frozen replica.
// The files are followed: a rotated certificate, CA or token is used by the
// next connection (and the token by the next RPC).
func dialOptions(s Settings, log *slog.Logger) ([]grpc.DialOption, error) {
	creds, err := grpccred.DialOptions(grpccred.Options{
		Endpoints: s.ControlPlane, CAFile: s.CPCAFile, CertFile: s.CPCertFile, KeyFile: s.CPKeyFile,
		TokenFile: s.CPTokenFile, Insecure: s.CPInsecure, Flag: "cp-", Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return append(creds, grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true,
	})), nil
}

// registerCPMetrics exports the control-plane connection on the agent.
func registerCPMetrics(reg prometheus.Registerer, cc *controlclient.Client) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcp_hangar_control_plane_connected",
			Help: "1 while the agent has a stream to a control-plane replica, else 0."}, func() float64 {
			if cc.Status().Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcp_hangar_snapshot_version",
			Help: "Version of the routing snapshot the agent runs (0: none)."}, func() float64 {
			return float64(cc.Status().SnapshotVersion)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcp_hangar_snapshot_age_seconds",
			Help: "Seconds since the agent last accepted a snapshot (0: none yet)."}, func() float64 {
			t := cc.Status().LastSnapshot
			if t.IsZero() {
				return 0
			}
			return time.Since(t).Seconds()
		}),
	)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "hangar-agent"
	}
	return strings.ToLower(h)
}
