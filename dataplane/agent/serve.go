package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/hangarmesh/hangar/dataplane/accesslog"
	"github.com/hangarmesh/hangar/dataplane/controlclient"
	"github.com/hangarmesh/hangar/dataplane/gateway"
	"github.com/hangarmesh/hangar/dataplane/metrics"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	"github.com/hangarmesh/hangar/internal/secretfile"
	"github.com/hangarmesh/hangar/internal/sighup"
	"github.com/hangarmesh/hangar/internal/version"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// shutdownGrace bounds how long in-flight HTTP requests may finish on stop;
// after sessionGrace the MCP sessions (and their standing streams) close.
const (
	shutdownGrace = 5 * time.Second
	sessionGrace  = 2 * time.Second
)

func serveCmd(ctx context.Context, s Settings, stdin io.Reader, stdout, stderr io.Writer) error {
	log, level, closer, err := newLogger(s, stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	hup, stopHUP := sighup.Notify()
	defer stopHUP()

	var fleet *fleetfile.Fleet
	var fleetData []byte
	if s.ConfigPath != "" {
		if fleetData, err = os.ReadFile(s.ConfigPath); err != nil {
			return fmt.Errorf("read fleet config (nothing was started): %w", err)
		}
		if fleet, err = fleetfile.ParseAs(fleetfile.Agent, s.ConfigPath, fleetData); err != nil {
			return fmt.Errorf("invalid fleet configuration (nothing was started):\n%w", err)
		}
		log.Info("config_loaded", "path", s.ConfigPath, "servers", len(fleet.Servers), "groups", len(fleet.Groups))
	}
	met := metrics.New()
	obs, closeAccess, err := callObservers(s, met, stdout)
	if err != nil {
		return err
	}
	defer closeAccess.Close()
	var sideLn net.Listener // stdio mode's /metrics and health endpoints
	if !s.HTTP && s.MetricsAddr != "" {
		if sideLn, err = net.Listen("tcp", s.MetricsAddr); err != nil {
			return fmt.Errorf("listen on --metrics-listen %s (nothing was started): %w", s.MetricsAddr, err)
		}
		defer sideLn.Close()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)

	// The fleet runtime holds the router (rebuilt when a snapshot brings a
	// new fleet configuration); the control-plane client, when configured,
	// observes every call and drives the runtime.
	var rt *fleetRuntime
	installed := make(chan struct{})
	if len(s.ControlPlane) == 0 {
		rt = newFleetRuntime(ctx, log, obs, gatewayOptions(s))
		if err := rt.install(fleet, ""); err != nil {
			return err
		}
		close(installed)
	} else {
		var cc *controlclient.Client
		var agent *managedAgent
		if rt, agent, cc, err = startManaged(ctx, s, fleet, met, obs, log); err != nil {
			return err
		}
		installed = agent.installed
		eg.Go(func() error { return cc.Run(ctx) })
		// Over HTTP the health endpoints answer (not ready) and calls get
		// a clear error until a fleet configuration runs; stdio has
		// nothing to answer with, so it waits.
		if err := waitInstalled(ctx, agent, log, !s.HTTP); err != nil {
			cancel()
			_ = eg.Wait()
			rt.wait()
			return err
		}
	}
	defer rt.wait()
	// SIGHUP and edits of --config reload it; without --config, SIGHUP
	// is logged and ignored (it would otherwise end the process).
	install := func(f *fleetfile.Fleet) error { return rt.install(f, "") }
	// SIGHUP also reads --settings again (settingsfile).
	cr := newConfigReloader(s.ConfigPath, fleetData, install, log)
	if sr := settingsReloader(s, level, log); sr != nil {
		cr.onHUP = func() { sr.Reload() }
	}
	eg.Go(func() error { return cr.Run(ctx, hup) })
	eg.Go(func() error {
		select {
		case <-installed:
			return rt.gateway().Run(ctx)
		case <-ctx.Done():
			return nil
		}
	})
	if sideLn != nil {
		eg.Go(func() error { return serveStdioSide(ctx, sideLn, met, installed, log) })
	}
	eg.Go(func() error {
		defer cancel() // the front door closing (stdin EOF) stops the agent
		if s.HTTP {
			return serveHTTP(ctx, s, &mcpDoor{installed: installed, gw: rt.gateway}, met, log)
		}
		log.Info("stdio_server_started")
		conn, err := (&mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}).Connect(ctx)
		if err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		err = rt.gateway().ServeConn(ctx, conn)
		if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, mcp.ErrConnectionClosed) {
			return fmt.Errorf("stdio: %w", err)
		}
		return nil
	})
	err = eg.Wait()
	log.Info("agent_stopped")
	return err
}

func gatewayOptions(s Settings) gateway.Options {
	return gateway.Options{SessionIdle: s.SessionIdle, MaxSessions: s.MaxSessions, MaxRequestBytes: s.Limits.MaxRequestBytes}
}

// startManaged prepares managed mode: the runtime, the agent the
// control-plane client drives, and the client itself. A fleet from
// --config is installed at once; otherwise the last snapshot in the state
// dir is, so the agent serves within a second even with every replica down.
func startManaged(ctx context.Context, s Settings, fleet *fleetfile.Fleet, met *metrics.Agent, obs router.Observer, log *slog.Logger) (*fleetRuntime, *managedAgent, *controlclient.Client, error) {
	dial, err := dialOptions(s, log)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := controlclient.Options{
		Endpoints: s.ControlPlane, AgentID: s.AgentID, Host: hostname(), Version: version.Version,
		DialOptions: dial, StateDir: s.StateDir, Logger: log, Groups: s.Groups,
	}
	if err := setIdentity(&opts, s, log); err != nil {
		return nil, nil, nil, err
	}
	saved, err := controlclient.LoadState(s.StateDir, log)
	if err != nil {
		log.Warn("state_unusable", "dir", s.StateDir, "error", err.Error())
	}
	if len(saved) > 0 {
		// Announced as stale: the control plane's snapshot is applied
		// even at this version (and the agent may run the one before).
		opts.SnapshotVersion = saved[0].GetVersion()
		// Its fleet file's hash goes in Hello: the file is not sent again.
		opts.Boot = saved[0]
	}
	// The order the parts need: the runtime's routers report to the
	// client's observer, the agent runs the runtime, the client drives
	// the agent.
	opts.Observer = controlclient.NewObserver()
	rt := newFleetRuntime(ctx, log, router.Observers(obs, opts.Observer), gatewayOptions(s))
	agent := newManagedAgent(rt, fleet != nil)
	cc := controlclient.New(agent, opts)
	registerCPMetrics(met.Registry, cc)
	if fleet != nil {
		if err := rt.install(fleet, ""); err != nil {
			return nil, nil, nil, err
		}
	}
	bootFromState(agent, saved, s.StateDir, log)
	return rt, agent, cc, nil
}

// bootFromState applies the newest saved snapshot the agent accepts (the
// last one, else the one before it).
func bootFromState(agent *managedAgent, saved []*hangarv1.Snapshot, dir string, log *slog.Logger) {
	for i, boot := range saved {
		if err := agent.ApplySnapshot(boot); err != nil {
			log.Warn("state_unusable", "dir", dir, "version", boot.GetVersion(), "error", err.Error())
			continue
		}
		if i > 0 {
			log.Warn("state_fallback", "dir", dir, "version", boot.GetVersion(),
				"reason", "the last saved snapshot cannot be applied: using the one before it")
		}
		log.Info("state_loaded", "dir", dir, "version", boot.GetVersion())
		agent.Detach() // until a replica answers, local probes decide
		return
	}
}

// waitInstalled logs that the agent waits for a fleet configuration (from
// --config, the state dir or the first snapshot) if none runs yet, and
// with block set waits for it.
func waitInstalled(ctx context.Context, a *managedAgent, log *slog.Logger, block bool) error {
	select {
	case <-a.installed:
		return nil
	default:
	}
	log.Info("waiting_for_fleet_config", "reason", "no --config and no usable snapshot in --state-dir: waiting for the control plane")
	if !block {
		return nil
	}
	select {
	case <-a.installed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopped before the control plane sent a fleet configuration: %w", ctx.Err())
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// maxHeaderBytes bounds a request's headers (the body has --max-request-bytes).
const maxHeaderBytes = 64 << 10

// serveHTTP serves Streamable HTTP at /mcp plus health and metrics until ctx
// ends, then stops accepting and lets requests finish for shutdownGrace.
func serveHTTP(ctx context.Context, s Settings, door *mcpDoor, met *metrics.Agent, log *slog.Logger) error {
	// The token file is followed as it changes: rotating it needs no restart.
	var token *secretfile.File
	if s.AuthTokenFile != "" {
		var err error
		if token, err = secretfile.Open("--auth-token-file", s.AuthTokenFile, 16, func(err error) {
			if err != nil {
				log.Error("token_reload_failed", "flag", "--auth-token-file", "path", s.AuthTokenFile, "error", err.Error(), "running", "the previous token")
				return
			}
			log.Info("token_reloaded", "flag", "--auth-token-file", "path", s.AuthTokenFile)
		}); err != nil {
			return err
		}
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	ln, nconn, err := listenHTTP(addr, s.Limits, log)
	if err != nil {
		return err
	}
	dm := newDoorMetrics(met.Registry, nconn)
	auth := func(next http.Handler) http.Handler {
		if token == nil {
			return next
		}
		return requireTokenFrom(token.Get, dm, next)
	}
	watch := newConnWatch(nconn, dm, log)
	mux := http.NewServeMux()
	l := s.Limits
	mux.Handle("/mcp", newRateLimit(l, dm).wrap(auth(limitBody(l, dm, log,
		capResponse(l.MaxResponseBytes, dm, log, http.NewCrossOriginProtection().Handler(door))))))
	mux.HandleFunc("/health/live", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	groupsReady := readyHandler(func() *router.Router { return door.gw().Router() })
	mux.HandleFunc("/health/ready", func(w http.ResponseWriter, r *http.Request) {
		if !door.ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": notReady})
			return
		}
		if !door.gw().Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready",
				"reason": "the front_door groups' tool lists are not known yet"})
			return
		}
		groupsReady.ServeHTTP(w, r)
	})
	metricsH := promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: l.ReadHeaderTimeout, IdleTimeout: l.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes, ConnState: watch.track}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	if s.MetricsAddr == "" {
		mux.Handle("/metrics", auth(metricsH))
	} else {
		mln, err := net.Listen("tcp", s.MetricsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on --metrics-listen %s: %w", s.MetricsAddr, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("/metrics", metricsH)
		servers = append(servers, &http.Server{Handler: mmux, ReadHeaderTimeout: l.ReadHeaderTimeout,
			IdleTimeout: l.IdleTimeout, MaxHeaderBytes: maxHeaderBytes})
		listeners = append(listeners, mln)
		log.Info("metrics_server_started", "addr", mln.Addr().String())
	}
	log.Info("http_server_started", "addr", ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+"/mcp",
		"auth", token != nil, "max_connections", nconn)
	return runServers(ctx, servers, listeners, watch, door, log)
}

// runServers serves until ctx ends or a server fails, then shuts them
// down: stop accepting and let calls in flight finish (Shutdown), while
// ending what would hold it up for nothing: MCP sessions' standing SSE
// streams and connections that never sent a request.
func runServers(ctx context.Context, servers []*http.Server, lns []net.Listener, watch *connWatch, door *mcpDoor, log *slog.Logger) error {
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(lns[i]) }()
	}
	var failed error
	select {
	case err := <-errc:
		failed = fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopped := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { stopped <- srv.Shutdown(shutdownCtx) }()
	}
	watch.closeFresh()
	sessionsClosed := time.After(sessionGrace)
	for range servers {
		var err error
		select {
		case err = <-stopped: // every request finished
		case <-sessionsClosed:
			// Calls in flight had their time; standing SSE streams
			// never end by themselves: close the sessions.
			door.closeSessions()
			err = <-stopped
		}
		if err != nil {
			log.Warn("http_shutdown_forced", "error", err.Error())
			for _, srv := range servers {
				_ = srv.Close()
			}
		}
	}
	for range len(servers) - btoi(failed != nil) {
		<-errc
	}
	return failed
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notReady is what /health/ready and calls say before a fleet
// configuration runs.
const notReady = "no fleet configuration yet: --state-dir held no usable snapshot and no control-plane replica has sent one; " +
	"the agent serves calls once a replica answers"

// mcpDoor is the MCP endpoint: until a fleet configuration runs, every
// request gets a clear JSON-RPC error (503); then the gateway serves.
type mcpDoor struct {
	installed <-chan struct{}
	gw        func() *gateway.Gateway

	once sync.Once
	h    http.Handler
}

func (d *mcpDoor) ready() bool {
	select {
	case <-d.installed:
		return true
	default:
		return false
	}
}

func (d *mcpDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.ready() {
		rpcError(w, http.StatusServiceUnavailable, codeUnavailable, notReady, false)
		return
	}
	d.once.Do(func() { d.h = d.gw().HTTPHandler() })
	d.h.ServeHTTP(w, r)
}

// closeSessions ends the MCP sessions (and their standing streams).
func (d *mcpDoor) closeSessions() {
	if !d.ready() {
		return
	}
	d.gw().CloseSessions()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// callObservers returns the observers of every call: the metrics, plus the
// access log with --access-log (the closer closes its file).
func callObservers(s Settings, met *metrics.Agent, stdout io.Writer) (router.Observer, io.Closer, error) {
	switch s.AccessLog {
	case "":
		return met, io.NopCloser(nil), nil
	case "-":
		return router.Observers(met, accesslog.New(stdout, clock.Real{})), io.NopCloser(nil), nil
	}
	f, err := os.OpenFile(s.AccessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open --access-log (nothing was started): %w", err)
	}
	return router.Observers(met, accesslog.New(f, clock.Real{})), f, nil
}
