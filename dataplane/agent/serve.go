package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/hangarmesh/hangar/dataplane/config"
	"github.com/hangarmesh/hangar/dataplane/controlclient"
	"github.com/hangarmesh/hangar/dataplane/gateway"
	"github.com/hangarmesh/hangar/dataplane/metrics"
	"github.com/hangarmesh/hangar/dataplane/router"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// shutdownGrace bounds how long in-flight HTTP requests may finish on stop;
// after sessionGrace the MCP sessions (and their standing streams) close.
const (
	shutdownGrace = 5 * time.Second
	sessionGrace  = 2 * time.Second
)

func serveCmd(ctx context.Context, s Settings, stdin io.Reader, stdout, stderr io.Writer) error {
	log, closer, err := newLogger(s, stderr)
	if err != nil {
		return err
	}
	defer closer.Close()

	var fleet *config.Fleet
	if s.ConfigPath != "" {
		if fleet, err = config.Load(s.ConfigPath); err != nil {
			return fmt.Errorf("invalid fleet configuration (nothing was started):\n%w", err)
		}
		log.Info("config_loaded", "path", s.ConfigPath, "servers", len(fleet.Servers), "groups", len(fleet.Groups))
	}
	met := metrics.New()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)

	// The fleet runtime holds the router (rebuilt when a snapshot brings a
	// new fleet configuration); the control-plane client, when configured,
	// observes every call and drives the runtime.
	var rt *fleetRuntime
	if len(s.ControlPlane) == 0 {
		rt = newFleetRuntime(ctx, log, met)
		if err := rt.install(fleet, ""); err != nil {
			return err
		}
	} else {
		var cc *controlclient.Client
		var agent *managedAgent
		if rt, agent, cc, err = startManaged(ctx, s, fleet, met, log); err != nil {
			return err
		}
		eg.Go(func() error { return cc.Run(ctx) })
		if err := waitInstalled(ctx, agent, log); err != nil {
			cancel()
			_ = eg.Wait()
			rt.wait()
			return err
		}
	}
	defer rt.wait()
	gw := rt.gateway()
	eg.Go(func() error { return gw.Run(ctx) })
	eg.Go(func() error {
		defer cancel() // the front door closing (stdin EOF) stops the agent
		if s.HTTP {
			return serveHTTP(ctx, s, gw, met, log)
		}
		log.Info("stdio_server_started")
		err := gw.Server().Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}})
		if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, mcp.ErrConnectionClosed) {
			return fmt.Errorf("stdio: %w", err)
		}
		return nil
	})
	err = eg.Wait()
	log.Info("agent_stopped")
	return err
}

// startManaged prepares managed mode: the runtime, the agent the
// control-plane client drives, and the client itself. A fleet from
// --config is installed at once; otherwise the last snapshot in the state
// dir is, so the agent serves within a second even with every replica down.
func startManaged(ctx context.Context, s Settings, fleet *config.Fleet, met *metrics.Agent, log *slog.Logger) (*fleetRuntime, *managedAgent, *controlclient.Client, error) {
	dial, err := dialOptions(s)
	if err != nil {
		return nil, nil, nil, err
	}
	var agent *managedAgent
	opts := controlclient.Options{
		Endpoints: s.ControlPlane, AgentID: s.AgentID, Host: hostname(), Version: Version,
		DialOptions: dial, StateDir: s.StateDir, Logger: log,
	}
	var boot *hangarv1.Snapshot
	if s.StateDir != "" {
		if boot, err = controlclient.LoadState(s.StateDir); err != nil {
			log.Warn("state_unusable", "dir", s.StateDir, "error", err.Error())
			boot = nil
		}
		if boot != nil {
			opts.SnapshotVersion = boot.GetVersion()
		}
	}
	cc := controlclient.New(agentProxy{&agent}, opts)
	rt := newFleetRuntime(ctx, log, router.Observers(met, cc.Observer()))
	agent = newManagedAgent(rt, fleet != nil)
	registerCPMetrics(met.Registry, cc)
	if fleet != nil {
		if err := rt.install(fleet, ""); err != nil {
			return nil, nil, nil, err
		}
	}
	if boot != nil {
		if err := agent.ApplySnapshot(boot); err != nil {
			log.Warn("state_unusable", "dir", s.StateDir, "error", err.Error())
		} else {
			log.Info("state_loaded", "dir", s.StateDir, "version", boot.GetVersion())
			agent.Detach() // until a replica answers, local probes decide
		}
	}
	return rt, agent, cc, nil
}

// agentProxy lets the client be built before the agent it drives.
type agentProxy struct{ a **managedAgent }

func (p agentProxy) ApplySnapshot(s *hangarv1.Snapshot) error { return (*p.a).ApplySnapshot(s) }
func (p agentProxy) AssignProbes(m []string)                  { (*p.a).AssignProbes(m) }
func (p agentProxy) Detach()                                  { (*p.a).Detach() }
func (p agentProxy) LocalView() ([]router.MemberView, []router.GroupView) {
	return (*p.a).LocalView()
}
func (p agentProxy) Servers() []string { return (*p.a).Servers() }

// waitInstalled blocks until a fleet configuration runs (from --config,
// the state dir or the first snapshot).
func waitInstalled(ctx context.Context, a *managedAgent, log *slog.Logger) error {
	select {
	case <-a.installed:
		return nil
	default:
	}
	log.Info("waiting_for_fleet_config", "reason", "no --config and no snapshot in --state-dir: waiting for the control plane")
	select {
	case <-a.installed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopped before the control plane sent a fleet configuration: %w", ctx.Err())
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// serveHTTP serves Streamable HTTP at /mcp plus health and metrics until ctx
// ends, then stops accepting and lets requests finish for shutdownGrace.
func serveHTTP(ctx context.Context, s Settings, gw *gateway.Gateway, met *metrics.Agent, log *slog.Logger) error {
	var token string
	if s.AuthTokenFile != "" {
		var err error
		if token, err = readToken(s.AuthTokenFile); err != nil {
			return err
		}
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using the port? choose one with --port)", addr, err)
	}
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return gw.Server() },
		&mcp.StreamableHTTPOptions{MaxRequestBodyBytes: 4 << 20})
	mux := http.NewServeMux()
	mux.Handle("/mcp", requireToken(token, http.NewCrossOriginProtection().Handler(gw.HTTPHandler(mcpHandler))))
	mux.HandleFunc("/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("/metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	conns := &connTracker{fresh: map[net.Conn]struct{}{}}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnState: conns.track}

	log.Info("http_server_started", "addr", ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+"/mcp", "auth", token != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting and let calls in flight finish (Shutdown), while ending
	// what would hold it up for nothing: MCP sessions' standing SSE streams
	// and connections that never sent a request.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(shutdownCtx) }()
	conns.closeFresh()
	select {
	case err = <-stopped: // every request finished
	case <-time.After(sessionGrace):
		// Calls in flight had their time; standing SSE streams never end
		// by themselves: close the sessions.
		for ss := range gw.Server().Sessions() {
			_ = ss.Close()
		}
		err = <-stopped
	}
	if err != nil {
		log.Warn("http_shutdown_forced", "error", err.Error())
		_ = srv.Close()
	}
	<-errc
	return nil
}

// connTracker knows the connections that have not sent a request yet, which
// http.Server.Shutdown would otherwise wait on for seconds.
type connTracker struct {
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

func (c *connTracker) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state == http.StateNew {
		c.fresh[conn] = struct{}{}
	} else {
		delete(c.fresh, conn)
	}
}

func (c *connTracker) closeFresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.fresh {
		_ = conn.Close()
	}
}

// requireToken checks "Authorization: Bearer <token>" when token is set.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hangar-agent"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
