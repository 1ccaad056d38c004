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
	"github.com/hangarmesh/hangar/dataplane/gateway"
	"github.com/hangarmesh/hangar/dataplane/metrics"
	"github.com/hangarmesh/hangar/dataplane/router"
)

// shutdownGrace bounds how long in-flight HTTP requests may finish on stop.
const shutdownGrace = 5 * time.Second

func serveCmd(ctx context.Context, s Settings, stdin io.Reader, stdout, stderr io.Writer) error {
	log, closer, err := newLogger(s, stderr)
	if err != nil {
		return err
	}
	defer closer.Close()

	fleet, err := config.Load(s.ConfigPath)
	if err != nil {
		return fmt.Errorf("invalid fleet configuration (nothing was started):\n%w", err)
	}
	log.Info("config_loaded", "path", s.ConfigPath, "servers", len(fleet.Servers), "groups", len(fleet.Groups))

	met := metrics.New()
	r, err := router.New(fleet, router.Options{Logger: log, Observer: met})
	if err != nil {
		return err
	}
	gw := gateway.New(r, log)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return r.Run(ctx) })
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
	for ss := range gw.Server().Sessions() {
		_ = ss.Close()
	}
	conns.closeFresh()
	if err := <-stopped; err != nil {
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
