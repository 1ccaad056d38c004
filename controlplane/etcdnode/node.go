// Package etcdnode runs a single-node etcd inside the control-plane process:
// the default store behind --data-dir, used when no external cluster is given
// with --etcd-endpoints. Start brings the node up and waits until it serves;
// Close stops it and waits for every goroutine it started.
//
// The node keeps etcd's production settings (fsync on, 100 ms heartbeat,
// 1 s election timeout) unless Config.Fast is set, which tests use to start in
// about 40 ms. etcd's own logs are dropped unless the given logger has debug
// enabled; then they are forwarded to it at debug level.
package etcdnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Defaults used when the Config leaves a field empty.
const (
	DefaultURL  = "http://127.0.0.1:0"
	DefaultName = "hangar"
	// compactionRetention bounds the history etcd keeps: older revisions are
	// compacted every hour, so the database does not grow with every snapshot
	// and event ever written.
	compactionRetention = "1h"
	dialTimeout         = 5 * time.Second
	// Close gives in-flight client RPCs this long, then cuts the remaining
	// connections (watches never end by themselves); etcd alone would wait
	// its request timeout, over 5 s.
	closeGrace     = time.Second
	fastCloseGrace = 100 * time.Millisecond
)

// Errors Start returns, wrapped with the offending path or address.
var (
	ErrDataDirLocked = errors.New("etcdnode: data dir in use by another etcd")
	ErrAddrInUse     = errors.New("etcdnode: address already in use")
)

// Config says where and how the node runs. The zero value is not valid: Dir
// is required.
type Config struct {
	// Dir is the data directory (created with mode 0700 if missing). A
	// directory another etcd has open is refused with ErrDataDirLocked.
	Dir string
	// ClientURL and PeerURL are the listen (and advertised) URLs; empty means
	// DefaultURL, whose port 0 picks a free port: Endpoints reports the real
	// address.
	ClientURL, PeerURL string
	// Name is the member name; empty means DefaultName.
	Name string
	// InitialCluster lists the members of a new cluster as
	// name=peerURL,…; empty means this node alone. InitialClusterState is
	// "new" (default) or "existing"; ClusterToken tells clusters apart.
	InitialCluster, InitialClusterState, ClusterToken string
	// ClientTLS and PeerTLS secure the client and peer URLs (https); the
	// zero value means plaintext (http).
	ClientTLS, PeerTLS TLS
	// ClientCert, if set, is the certificate Client presents (a node whose
	// ClientTLS requires client certificates).
	ClientCert *LocalPKI
	// MaxRequestBytes is the largest request etcd accepts; 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes uint
	// Fast trades durability for speed, for tests only: no fsync, 10 ms
	// heartbeat, 50 ms election timeout.
	Fast bool
	// Logger receives the node's own messages and, when it has debug
	// enabled, etcd's logs at debug level. Nil discards everything.
	Logger *slog.Logger
}

// TLS are the files securing a URL. With CertFile and KeyFile the URL
// serves TLS; with TrustedCAFile and ClientCertAuth it requires client
// certificates signed by that CA.
type TLS struct {
	CertFile, KeyFile, TrustedCAFile string
	ClientCertAuth                   bool
}

func (t TLS) empty() bool { return t.CertFile == "" && t.KeyFile == "" && t.TrustedCAFile == "" }

// DefaultMaxRequestBytes is etcd's request size limit on the nodes Hangar
// runs: room for the largest fleet file (internal/fleetfile.MaxBytes) in a
// snapshot record with the routing state of a large fleet.
const DefaultMaxRequestBytes = 4 << 20

// Node is a running embedded etcd. Its methods are safe for concurrent use.
type Node struct {
	etcd      *embed.Etcd
	endpoints []string
	zlog      *zap.Logger
	log       *slog.Logger
	lock      *dirLock
	cert      *LocalPKI // Client's certificate, nil for none

	watchDone chan struct{} // closed when watchErrors returns
	mu        sync.Mutex    // guards firstErr, closing and servers
	firstErr  error         // first error etcd reported
	closing   bool          // Close has begun

	grace   time.Duration  // for in-flight client RPCs on Close
	servers []*grpc.Server // etcd's client-facing gRPC servers

	closeOnce sync.Once
	closeErr  error
}

// Start starts the node and returns once it serves clients, or with an error
// if it cannot start before ctx ends.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	ecfg, log, zlog, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcdnode: create data dir: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	n := &Node{zlog: zlog, log: log, lock: lock, watchDone: make(chan struct{}), grace: closeGrace}
	if cfg.Fast {
		n.grace = fastCloseGrace
	}
	ecfg.ServiceRegister = n.addServer
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		lock.release()
		return nil, startError(ecfg, err)
	}
	n.etcd, n.cert = e, cfg.ClientCert
	scheme := "http://"
	if !cfg.ClientTLS.empty() {
		scheme = "https://"
	}
	for _, l := range e.Clients {
		n.endpoints = append(n.endpoints, scheme+l.Addr().String())
	}
	go n.watchErrors()
	select {
	case <-e.Server.ReadyNotify():
	case <-e.Server.StopNotify():
		n.Close()
		return nil, fmt.Errorf("etcdnode: etcd stopped while starting in %s: %w", cfg.Dir, n.err())
	case <-ctx.Done():
		n.Close()
		return nil, fmt.Errorf("etcdnode: wait for etcd to be ready: %w", ctx.Err())
	}
	log.Info("etcd_started", "dir", cfg.Dir, "endpoints", n.endpoints, "fast", cfg.Fast)
	return n, nil
}

func embedConfig(cfg Config) (*embed.Config, *slog.Logger, *zap.Logger, error) {
	if cfg.Dir == "" {
		return nil, nil, nil, errors.New("etcdnode: data dir is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zlog := zapLogger(log)
	ec := embed.NewConfig()
	ec.Dir = cfg.Dir
	ec.Name = or(cfg.Name, DefaultName)
	ec.InitialCluster = "" // recomputed below from the peer URL
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zlog)
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = compactionRetention
	ec.EnableGRPCGateway = false // Hangar speaks gRPC only
	ec.MaxRequestBytes = cfg.MaxRequestBytes
	if ec.MaxRequestBytes == 0 {
		ec.MaxRequestBytes = DefaultMaxRequestBytes
	}
	for _, u := range []struct {
		raw  string
		dest *[]url.URL
		adv  *[]url.URL
		what string
	}{
		{cfg.ClientURL, &ec.ListenClientUrls, &ec.AdvertiseClientUrls, "client url"},
		{cfg.PeerURL, &ec.ListenPeerUrls, &ec.AdvertisePeerUrls, "peer url"},
	} {
		parsed, err := url.Parse(or(u.raw, DefaultURL))
		if err != nil || parsed.Host == "" || (parsed.Scheme != "http" && parsed.Scheme != "https") {
			return nil, nil, nil, fmt.Errorf("etcdnode: %s %q: want http://host:port or https://host:port", u.what, u.raw)
		}
		*u.dest, *u.adv = []url.URL{*parsed}, []url.URL{*parsed}
	}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	}
	if cfg.InitialClusterState != "" {
		ec.ClusterState = cfg.InitialClusterState
	}
	if cfg.ClusterToken != "" {
		ec.InitialClusterToken = cfg.ClusterToken
	}
	setTLS(&ec.ClientTLSInfo, cfg.ClientTLS)
	setTLS(&ec.PeerTLSInfo, cfg.PeerTLS)
	if cfg.PeerTLS.TrustedCAFile != "" {
		ec.PeerTLSInfo.ClientCertAuth = true // members authenticate each other
	}
	if cfg.Fast {
		ec.UnsafeNoFsync = true
		ec.TickMs = 10
		ec.ElectionMs = 50
	}
	return ec, log, zlog, nil
}

// startError turns the errors a user can fix into clear ones.
func startError(ec *embed.Config, err error) error {
	var op *net.OpError
	if errors.Is(err, syscall.EADDRINUSE) && errors.As(err, &op) {
		which := "listen address"
		for _, u := range ec.ListenClientUrls {
			if op.Addr != nil && op.Addr.String() == u.Host {
				which = "client url " + u.String()
			}
		}
		for _, u := range ec.ListenPeerUrls {
			if op.Addr != nil && op.Addr.String() == u.Host {
				which = "peer url " + u.String()
			}
		}
		return fmt.Errorf("%w: %s: another process listens there; stop it or choose another port (%v)",
			ErrAddrInUse, which, err)
	}
	return fmt.Errorf("etcdnode: start etcd in %s: %w", ec.Dir, err)
}

// watchErrors logs errors etcd reports while serving; it returns when Close
// has stopped etcd (which closes the channel).
func (n *Node) watchErrors() {
	defer close(n.watchDone)
	for err := range n.etcd.Err() {
		if err == nil {
			continue
		}
		n.mu.Lock()
		if n.firstErr == nil {
			n.firstErr = err
		}
		closing := n.closing
		n.mu.Unlock()
		if closing && strings.Contains(err.Error(), "server closed") {
			continue // the listeners closing under Close: not a failure
		}
		n.log.Error("etcd_failed", "err", err)
	}
}

func (n *Node) err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.firstErr == nil {
		return errors.New("no error reported")
	}
	return n.firstErr
}

// Endpoints returns the client URLs with the real ports.
func (n *Node) Endpoints() []string { return append([]string(nil), n.endpoints...) }

// Client dials a new client to the node. The caller closes it, before Close.
func (n *Node) Client() (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: n.Endpoints(), DialTimeout: dialTimeout, Logger: n.zlog}
	if n.cert != nil {
		tc, err := (transport.TLSInfo{CertFile: n.cert.ClientCertFile, KeyFile: n.cert.ClientKeyFile,
			TrustedCAFile: n.cert.CAFile}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcdnode: client certificate: %w", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdnode: dial %v: %w", n.endpoints, err)
	}
	return cli, nil
}

// Close stops the node and waits until it has stopped. Later calls return the
// first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closing = true
		n.mu.Unlock()
		n.stopServers()
		n.etcd.Close() // closes Err(), which ends watchErrors
		<-n.watchDone
		n.closeErr = n.lock.release()
	})
	return n.closeErr
}

// addServer records a gRPC server etcd serves clients with. etcd calls it
// from its serving goroutines.
func (n *Node) addServer(gs *grpc.Server) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.servers = append(n.servers, gs)
}

// stopServers stops the client gRPC servers gracefully, or at once after
// the grace period.
func (n *Node) stopServers() {
	n.mu.Lock()
	servers := slices.Clone(n.servers)
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, gs := range servers {
		wg.Go(gs.GracefulStop)
	}
	t := time.AfterFunc(n.grace, func() {
		for _, gs := range servers {
			gs.Stop() // interrupts GracefulStop
		}
	})
	wg.Wait()
	t.Stop()
}

func setTLS(info *transport.TLSInfo, t TLS) {
	info.CertFile, info.KeyFile, info.TrustedCAFile, info.ClientCertAuth = t.CertFile, t.KeyFile, t.TrustedCAFile, t.ClientCertAuth
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
