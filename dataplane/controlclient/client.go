package controlclient

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/backoff"
	"github.com/hangarmesh/hangar/internal/clock"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Agent is what the Client drives; the agent package implements it (it may
// rebuild its router on a new fleet config). The Client calls its methods
// from one goroutine at a time, except LocalView, which reports may call
// while the agent serves calls.
type Agent interface {
	// ApplySnapshot installs a snapshot atomically (global view, and the
	// fleet config if it changed). An error NACKs the snapshot; the previous
	// state stays in force.
	ApplySnapshot(s *hangarv1.Snapshot) error
	// AssignProbes makes the agent probe only the listed members.
	AssignProbes(members []string)
	// Detach is called when no replica answers: probe every member, decide
	// rotation locally (static stability).
	Detach()
	// LocalView is the agent's view of its members and groups, for reports.
	LocalView() ([]router.MemberView, []router.GroupView)
	// Servers lists the member ids the agent can call (for Hello).
	Servers() []string
}

// Options configure a Client. Zero values take the defaults noted.
type Options struct {
	// Endpoints lists the replicas (host:port, or any gRPC target); they are
	// tried in turn. Required.
	Endpoints []string
	// AgentID (stable across restarts), Host, Version and Labels go into Hello.
	AgentID, Host, Version string
	Labels                 map[string]string
	// Observer is the router.Observer whose counts and changes the
	// Client reports; nil means a new one (Client.Observer returns it).
	Observer *Observer
	// ConfigSource ("local" for a --config file, "" or "control-plane"
	// otherwise) and ConfigSHA256 (the hex SHA-256 of the local file) go
	// into Hello: a local fleet that differs from the control plane's keeps
	// the agent's reports out of its decisions.
	ConfigSource, ConfigSHA256 string
	// Instance identifies this process in Hello, so that a replica can tell
	// a reconnect from a second agent with the same id; "" = random.
	Instance string
	// DialOptions carry the credentials (TLS, per-RPC bearer token) built by
	// the caller; gRPC refuses to dial without transport credentials. Add
	// keepalive parameters (allowed by the replicas' enforcement policy) to
	// notice a replica that froze without closing the connection.
	DialOptions []grpc.DialOption
	// StateDir is where accepted snapshots are written; "" = no persistence.
	StateDir string
	// SnapshotVersion is the version of the snapshot the agent booted from
	// (LoadState), 0 if none. Hello announces it, and a pushed snapshot of a
	// lower version is ignored.
	SnapshotVersion uint64
	// Boot is the snapshot the agent booted from (LoadState), nil if none.
	// Hello announces its fleet file's hash, so that the control plane
	// does not send the file again while it is unchanged.
	Boot *hangarv1.Snapshot
	// Groups lists the groups this agent serves (Hello): snapshots carry
	// routing state for these and the groups it calls. Empty: the groups of
	// its servers, or every group if it takes its fleet from the control
	// plane.
	Groups []string
	// Clock drives heartbeats, coalescing, dial timeouts and backoff;
	// nil = the wall clock.
	Clock clock.Clock
	// Logger receives the Client's events; nil = discard.
	Logger *slog.Logger
	// Heartbeat is the period of heartbeat reports; default 1 s.
	Heartbeat time.Duration
	// MaxBackoff caps the delay between connection attempts; default 10 s.
	// The delay starts at 100 ms, doubles per failed attempt with full
	// jitter, and resets after a stream lived longer than 10 s or delivered
	// a snapshot.
	MaxBackoff time.Duration
}

// Defaults and fixed timings.
const (
	DefaultHeartbeat  = time.Second
	DefaultMaxBackoff = 10 * time.Second
	initialBackoff    = 100 * time.Millisecond
	// A stream that lived this long counts as a success: backoff resets.
	healthyStream = 10 * time.Second
	// coalesce is how long an edge-triggered report waits for the rest of
	// a burst of state changes.
	coalesce = 10 * time.Millisecond
	// dialTimeout bounds the wait for a replica to accept the connection.
	dialTimeout = 5 * time.Second
)

// Log event names and attribute keys.
const (
	evConnected      = "control_plane_connected"
	evDisconnected   = "control_plane_disconnected"
	evSnapshot       = "snapshot_applied"
	evSnapshotNacked = "snapshot_rejected"
	evSnapshotOld    = "snapshot_ignored"
	evStateWrite     = "state_write_failed"
	evAssignment     = "probes_assigned"

	keyEndpoint = "endpoint"
	keyError    = "error"
	keyVersion  = "version"
	keyApplied  = "applied_version"
	keyNonce    = "nonce"
	keyRetryIn  = "retry_in"
	keyFailures = "failures"
	keyMembers  = "members"
	keyDelta    = "delta"
	keyGroups   = "groups"
)

// Status is a point-in-time view of a Client, for metrics and health.
type Status struct {
	Connected bool   // a stream is open and Hello was sent
	Endpoint  string // the replica of the open stream; "" when not connected
	// SnapshotVersion is the version the agent runs (Options.SnapshotVersion
	// until a snapshot is applied).
	SnapshotVersion uint64
	LastSnapshot    time.Time // when a snapshot was last applied; zero: never
}

// Client is the agent's control-plane connection. Create it with New, give
// Observer to the router, then call Run once (not concurrently, not again
// after it returns). Status and Observer are safe for concurrent use.
type Client struct {
	agent     Agent
	opts      Options
	clock     clock.Clock
	log       *slog.Logger
	heartbeat time.Duration
	obs       *Observer

	// Test hooks: jitter maps a backoff ceiling to the delay waited (full
	// jitter by default); onRetry sees every delay Run waits.
	jitter  func(time.Duration) time.Duration
	onRetry func(time.Duration)

	mu     sync.Mutex
	status Status
	// held is the full state the agent runs: the snapshots and deltas
	// applied so far (Options.Boot at first); deltas apply to it.
	held *hangarv1.Snapshot
	// stale is set while the agent runs its snapshot detached (Detach, or
	// booted from the state dir): the same version must then be applied
	// again, since Detach dropped its rotation and breaker opinions.
	stale bool
}

// New returns a Client that drives a with the options o.
func New(a Agent, o Options) *Client {
	c := &Client{agent: a, opts: o, clock: o.Clock, log: o.Logger, heartbeat: o.Heartbeat,
		obs: o.Observer, jitter: backoff.Full, stale: o.SnapshotVersion != 0, held: o.Boot}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	if c.obs == nil {
		c.obs = NewObserver()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.heartbeat <= 0 {
		c.heartbeat = DefaultHeartbeat
	}
	if c.opts.MaxBackoff <= 0 {
		c.opts.MaxBackoff = DefaultMaxBackoff
	}
	c.opts.Endpoints = slices.Clone(o.Endpoints)
	c.opts.Labels = maps.Clone(o.Labels)
	if c.opts.Instance == "" {
		c.opts.Instance = rand.Text()
	}
	c.opts.Groups = slices.Clone(o.Groups)
	c.status.SnapshotVersion = o.SnapshotVersion
	return c
}

// Observer returns the router.Observer that feeds the Client's reports
// (Options.Observer, or the one New made).
func (c *Client) Observer() router.Observer { return c.obs }

// Status returns the connection's current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// ErrNoEndpoints is returned by Run when Options.Endpoints is empty.
var ErrNoEndpoints = errors.New("controlclient: no control-plane endpoints")

// Run connects to the replicas in turn and serves the stream until ctx
// ends; it returns nil then.
//
// When an attempt fails or a stream breaks, Run calls Agent.Detach, once
// per outage: not again on the retries that follow, nor when a stream that
// applied no snapshot or assignment (a replica that accepts the stream,
// then rejects the agent) breaks, since such a stream changed nothing in
// the agent.
func (c *Client) Run(ctx context.Context) error {
	if len(c.opts.Endpoints) == 0 {
		return ErrNoEndpoints
	}
	b := backoff.New(c.clock, initialBackoff, c.opts.MaxBackoff, c.jitter)
	detached := false
	failures := 0 // failed attempts since a stream last opened
	for i := 0; ; i++ {
		endpoint := c.opts.Endpoints[i%len(c.opts.Endpoints)]
		res := c.session(ctx, endpoint)
		c.setDisconnected()
		if ctx.Err() != nil {
			return nil
		}
		if res.attached {
			detached = false
		}
		if res.connected {
			failures = 0
		}
		failures++
		if res.gotSnapshot || res.lived > healthyStream {
			b.Reset()
		}
		delay := b.Next()
		c.log.Warn(evDisconnected, keyEndpoint, endpoint, keyError, res.err.Error(),
			keyFailures, failures, keyRetryIn, delay)
		if !detached {
			c.agent.Detach()
			c.mu.Lock()
			c.stale = true
			c.mu.Unlock()
			detached = true
		}
		if c.onRetry != nil {
			c.onRetry(delay)
		}
		if !backoff.Sleep(ctx, c.clock, delay) {
			return nil
		}
	}
}

func (c *Client) setConnected(endpoint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Connected, c.status.Endpoint = true, endpoint
}

func (c *Client) setDisconnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Connected, c.status.Endpoint = false, ""
}

// appliedVersion returns the version the agent runs and whether it runs
// it detached (stale).
func (c *Client) appliedVersion() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status.SnapshotVersion, c.stale
}

func (c *Client) setApplied(s *hangarv1.Snapshot, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.SnapshotVersion, c.status.LastSnapshot, c.stale, c.held = s.GetVersion(), at, false, s
}

// heldState returns the full state the agent runs, nil if none.
func (c *Client) heldState() *hangarv1.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}
