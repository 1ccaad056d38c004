package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/admin"
	"github.com/hangarmesh/hangar/controlplane/etcdnode"
	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	"github.com/hangarmesh/hangar/internal/secretfile"
	"github.com/hangarmesh/hangar/internal/sighup"
	"github.com/hangarmesh/hangar/internal/tlsfiles"
	"github.com/hangarmesh/hangar/internal/version"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// stopGrace bounds the graceful part of shutdown.
const stopGrace = 5 * time.Second

func serve(ctx context.Context, s Settings, log *slog.Logger, onHUP func()) error {
	hup, stopHUP := sighup.Notify()
	defer stopHUP()
	sec, err := openSecrets(s, log)
	if err != nil {
		return err
	}
	cli, closeEtcd, err := connectEtcd(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeEtcd()
	st := store.New(cli, s.EtcdPrefix)

	if s.FleetConfig != "" {
		if err := applyFleetConfig(ctx, st, s, true, log); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.Collector("hangar_build_info"), etcdHealthGauge(st))
	met := server.NewMetrics(reg)
	// grpc_server_handling_seconds: latency of the admin calls and of the
	// agents' streams (a stream's time is its lifetime).
	grpcMet := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 600, 3600})))
	reg.MustRegister(grpcMet)

	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("listen on --listen %s: %w", s.Listen, err)
	}
	advertise := s.Advertise
	if advertise == "" {
		advertise = ln.Addr().String() // the real port, also with --listen HOST:0
	}
	rep := server.NewReplica(server.Options{
		Name: s.Name, Addr: advertise, ElectionTTL: s.ElectionTTL, Store: st, Metrics: met, Logger: log,
		Admit: admin.AdmitAgent,
	})
	gs := grpcServer(sec, grpcMet, rep, log)
	hangarv1.RegisterAgentServiceServer(gs, rep.AgentService())
	hangarv1.RegisterAdminServiceServer(gs, admin.New(rep, admin.Options{Logger: log}))
	grpcMet.InitializeMetrics(gs)
	mln, err := net.Listen("tcp", s.MetricsListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on --metrics-listen %s: %w", s.MetricsListen, err)
	}
	hs := &http.Server{Handler: httpMux(reg, st, rep), ReadHeaderTimeout: 10 * time.Second}
	log.Info("controlplane_started", "replica", s.Name, "grpc", ln.Addr().String(), "http", mln.Addr().String(),
		"etcd", strings.Join(cli.Endpoints(), ","))

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return rep.Run(ctx) })
	eg.Go(func() error { return reloadOnHUP(ctx, hup, s, st, sec, onHUP, log) })
	eg.Go(func() error {
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		if err := hs.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		<-ctx.Done()
		// Two phases: stop accepting and let streams end (agents
		// reconnect elsewhere), then cut what is left.
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			gs.Stop()
			<-done
		}
		sctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	})
	err = eg.Wait()
	log.Info("controlplane_stopped", "replica", s.Name)
	return err
}

// applyFleetConfig validates the fleet file with the data plane's parser
// and stores it. At startup (seedOnly) it only seeds an empty store: a
// config stored before (by hangarctl config apply, or another replica)
// wins, and the replica says so. On SIGHUP it stores the file when it
// differs, as a new revision with a config_applied event. A bad file is
// refused: the stored config stays as it was.
func applyFleetConfig(ctx context.Context, st *store.Store, s Settings, seedOnly bool, log *slog.Logger) error {
	path := s.FleetConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read --fleet-config: %w", err)
	}
	if _, err := fleetfile.ParseAs(fleetfile.ControlPlane, path, data); err != nil {
		return fmt.Errorf("--fleet-config refused (the stored configuration is unchanged):\n%w", err)
	}
	var rev int64
	var changed bool
	meta := store.ConfigMeta{By: "--fleet-config of replica " + s.Name, Name: path}
	if seedOnly {
		rev, changed, err = st.SeedConfig(ctx, data, meta)
	} else {
		rev, changed, err = st.PutConfigBy(ctx, data, meta)
	}
	if err != nil {
		return fmt.Errorf("store the fleet config: %w", err)
	}
	switch {
	case changed:
		how := "seeded the empty store"
		if !seedOnly {
			how = "reloaded on SIGHUP"
		}
		msg := fmt.Sprintf("%s stored as revision %d by --fleet-config of replica %s (%s)", path, rev, s.Name, how)
		if _, err := st.AppendEvent(ctx, store.Event{Kind: "config_applied", Message: msg}); err != nil {
			log.Warn("event_append_failed", "kind", "config_applied", "error", err.Error())
		}
		log.Info("fleet_config_applied", "path", path, "revision", rev, "changed", true, "seed", seedOnly)
	case seedOnly:
		if stored, _, err := st.Config(ctx); err == nil && !bytes.Equal(stored, data) {
			log.Warn("fleet_config_not_applied", "path", path, "revision", rev,
				"reason", "etcd already holds a fleet config, which wins at startup; apply the file with hangarctl config apply, or send SIGHUP")
		}
	default:
		log.Info("fleet_config_unchanged", "path", path, "revision", rev)
	}
	return nil
}

// embeddedConfig is the embedded node's configuration. When the replica
// serves TLS, the node (on loopback only) requires a client certificate from
// a private CA kept in <data-dir>/etcd-tls, so no other local process can
// read or write the store.
func embeddedConfig(s Settings, log *slog.Logger) (etcdnode.Config, error) {
	cfg := etcdnode.Config{Dir: s.DataDir, Logger: log}
	if s.TLSCertFile == "" {
		return cfg, nil
	}
	pki, err := etcdnode.EnsureLocalPKI(filepath.Join(s.DataDir, "etcd-tls"))
	if err != nil {
		return cfg, fmt.Errorf("embedded etcd TLS: %w", err)
	}
	cfg.ClientURL = "https://127.0.0.1:0"
	cfg.ClientTLS = etcdnode.TLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, TrustedCAFile: pki.CAFile, ClientCertAuth: true}
	cfg.ClientCert = &pki
	return cfg, nil
}

// connectEtcd starts the embedded node or connects to the cluster.
func connectEtcd(ctx context.Context, s Settings, log *slog.Logger) (*clientv3.Client, func(), error) {
	if len(s.EtcdEndpoints) == 0 {
		cfg, err := embeddedConfig(s, log)
		if err != nil {
			return nil, nil, err
		}
		node, err := etcdnode.Start(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("embedded etcd in --data-dir %s: %w", s.DataDir, err)
		}
		cli, err := node.Client()
		if err != nil {
			node.Close()
			return nil, nil, err
		}
		log.Info("etcd_embedded", "data_dir", s.DataDir, "endpoints", strings.Join(node.Endpoints(), ","))
		return cli, func() { cli.Close(); node.Close() }, nil
	}
	cfg := clientv3.Config{Endpoints: s.EtcdEndpoints, DialTimeout: 5 * time.Second, Context: ctx,
		Logger: etcdnode.ZapLogger(log)} // etcd's client logs in the process's slog format, not zap JSON
	if s.EtcdUsername != "" {
		// Read once: etcd's client authenticates with it when it connects.
		password, err := secretfile.Read("--etcd-password-file", s.EtcdPasswordFile, 1)
		if err != nil {
			return nil, nil, err
		}
		cfg.Username, cfg.Password = s.EtcdUsername, password
	}
	if s.EtcdCAFile != "" || s.EtcdCertFile != "" {
		m, err := tlsfiles.Load(tlsfiles.Files{CertFile: s.EtcdCertFile, KeyFile: s.EtcdKeyFile, CAFile: s.EtcdCAFile,
			CertFlag: "--etcd-cert-file", KeyFlag: "--etcd-key-file", CAFlag: "--etcd-ca-file"}, log)
		if err != nil {
			return nil, nil, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = m.ClientConfig(false)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(s.EtcdEndpoints, ","), err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Status(sctx, s.EtcdEndpoints[0]); err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("etcd %s does not answer: %w", strings.Join(s.EtcdEndpoints, ","), err)
	}
	return cli, func() { cli.Close() }, nil
}

// secrets are the replica's followed TLS material and token files.
type secrets struct {
	tls    *tlsfiles.Material // nil without --tls-cert-file
	tokens *tokenFiles        // nil without token files
}

// openSecrets loads the gRPC server's certificate (and client CA) and the
// token files; each is followed as it changes (packages tlsfiles and
// secretfile).
func openSecrets(s Settings, log *slog.Logger) (secrets, error) {
	var sec secrets
	var err error
	if s.TLSCertFile != "" {
		sec.tls, err = tlsfiles.Load(tlsfiles.Files{CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile, CAFile: s.TLSClientCAFile,
			CertFlag: "--tls-cert-file", KeyFlag: "--tls-key-file", CAFlag: "--tls-client-ca-file"}, log)
		if err != nil {
			return sec, fmt.Errorf("gRPC TLS: %w", err)
		}
	}
	if sec.tokens, err = openTokens(s, log); err != nil {
		return sec, err
	}
	return sec, nil
}

// reload reads every file again (SIGHUP); what does not load is logged and
// the previous material stays.
func (sec secrets) reload(log *slog.Logger) {
	if sec.tls != nil {
		_ = sec.tls.Reload() // logged by tlsfiles
	}
	if sec.tokens != nil {
		if err := sec.tokens.Reload(); err != nil {
			log.Error("token_reload_failed", "by", "SIGHUP", "error", err.Error(), "running", "the previous tokens")
		}
	}
}

// grpcServer builds the gRPC server with TLS or mTLS, bearer-token or
// client-certificate authentication with admin and read-only rights, panic
// recovery and Prometheus metrics. The certificate and the tokens are
// read from sec on every handshake and call.
func grpcServer(sec secrets, met *grpcprom.ServerMetrics, rep *server.Replica, log *slog.Logger) *grpc.Server {
	var authz admin.Authorizer
	if sec.tokens != nil {
		authz.Current = sec.tokens.Current
	}
	recover := recovery.WithRecoveryHandler(func(p any) error {
		log.Error("grpc_panic", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "hangar: internal error")
	})
	guardUnary, guardStream := admin.Guard(rep)
	opts := []grpc.ServerOption{
		grpc.ChainStreamInterceptor(met.StreamServerInterceptor(), recovery.StreamServerInterceptor(recover), authz.StreamInterceptor(), guardStream),
		grpc.ChainUnaryInterceptor(met.UnaryServerInterceptor(), recovery.UnaryServerInterceptor(recover), authz.UnaryInterceptor(), guardUnary),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if sec.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(sec.tls.ServerConfig())))
	}
	return grpc.NewServer(opts...)
}

// httpMux serves /metrics, /healthz (the process runs) and /readyz (the
// replica holds an etcd session and etcd answers).
func httpMux(reg *prometheus.Registry, st *store.Store, rep *server.Replica) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, since, cause := rep.Ready(); !ok {
			body := map[string]string{"status": "no etcd session", "error": cause}
			if !since.IsZero() {
				body["since"] = since.UTC().Format(time.RFC3339)
			}
			writeJSON(w, http.StatusServiceUnavailable, body)
			return
		}
		ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(r.Context()), 2*time.Second)
		defer cancel()
		if _, _, err := st.Config(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "etcd unavailable", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
