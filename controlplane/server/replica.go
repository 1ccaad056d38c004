package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/clock"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// publishEvery bounds how often a replica rewrites its agents' report in
// etcd; a change report goes out within this delay.
const publishEvery = 20 * time.Millisecond

// publishHeartbeats is how often heartbeats alone rewrite the reports: in
// steady state each replica writes at most reportShards keys this often,
// however many agents it serves (heartbeats arrive all the time, each
// agent's at its own phase, and would otherwise rewrite every shard every
// publishEvery).
const publishHeartbeats = time.Second

// Replica is one control-plane replica: it serves its agents' streams,
// publishes their reports for the leader, pushes every new snapshot to
// them, and campaigns to be the leader that decides (docs/design.md §4.3).
type Replica struct {
	name  string
	addr  string
	ttl   time.Duration
	store *store.Store
	hub   *hub
	svc   *agentService
	log   *slog.Logger
	met   *Metrics
	clk   clock.Clock

	health readiness
}

// Options configure a Replica.
type Options struct {
	Name        string        // unique replica name
	Addr        string        // advertised gRPC address
	ElectionTTL time.Duration // etcd session TTL (default 5 s)
	Store       *store.Store
	Metrics     *Metrics
	Logger      *slog.Logger
	Clock       clock.Clock
	// Admit, if set, decides whether a stream's caller may connect as the
	// agent id of its Hello; its error (a gRPC status) ends the stream.
	Admit func(ctx context.Context, agentID string) error
}

// NewReplica builds a replica; Run starts it.
func NewReplica(o Options) *Replica {
	if o.ElectionTTL <= 0 {
		o.ElectionTTL = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	h := newHub(o.Logger, o.Metrics, o.Clock)
	r := &Replica{
		name: o.Name, addr: o.Addr, ttl: o.ElectionTTL, store: o.Store, hub: h, log: o.Logger, met: o.Metrics, clk: o.Clock,
		svc: &agentService{hub: h, log: o.Logger, met: o.Metrics, clk: o.Clock, store: o.Store, admit: o.Admit},
	}
	r.svc.remote = r.remoteDuplicate
	return r
}

// AgentService returns the gRPC service to register on the replica's server.
func (r *Replica) AgentService() hangarv1.AgentServiceServer { return r.svc }

// Run serves until ctx ends. The replica's agents are served throughout:
// when its etcd session is lost (etcd down or without quorum) it steps
// down (no leadership, no report publishing), keeps serving its agents
// the last snapshot, reports not ready (Ready), and opens a new session
// as soon as etcd answers again. Losing etcd never ends Run.
func (r *Replica) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return r.follow(ctx) })
	eg.Go(func() error { return r.sessions(ctx) })
	eg.Go(func() error { return r.relayConfirms(ctx) })
	return eg.Wait()
}

// sessions holds one etcd session after another until ctx ends, and runs
// the session-bound work (publishing, campaigning) in each. It fails only
// when the etcd client is closed under it.
func (r *Replica) sessions(ctx context.Context) error {
	b := newRetry()
	for ctx.Err() == nil {
		err := r.session(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		if r.store.Closed() {
			return fmt.Errorf("etcd client closed: %w", err)
		}
		r.health.lost(r.clk.Now(), err)
		d := b.NextBackOff()
		r.log.Warn("etcd_session_lost", "replica", r.name, "error", errString(err), "retry_in", d.String())
		if !sleep(ctx, r.clk, d) {
			return nil
		}
	}
	return nil
}

// session runs one etcd session: register, then publish and campaign until
// the session ends. It returns why it ended.
func (r *Replica) session(ctx context.Context, b *backoff.ExponentialBackOff) error {
	gctx, cancel := context.WithTimeout(ctx, r.ttl)
	sess, err := r.store.NewSession(gctx, r.ttl)
	cancel()
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	rctx, cancel := context.WithTimeout(ctx, r.ttl)
	err = r.store.RegisterReplica(rctx, sess, r.name, r.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("register replica: %w", err)
	}
	b.Reset()
	if down := r.health.up(r.clk.Now()); down > 0 {
		r.log.Info("etcd_session_restored", "replica", r.name, "down_seconds", down.Seconds())
	} else {
		r.log.Info("replica_started", "replica", r.name, "addr", r.addr)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	eg, sctx := errgroup.WithContext(sctx)
	eg.Go(func() error { return r.publish(sctx, sess) })
	eg.Go(func() error { return r.campaign(sctx, sess) })
	eg.Go(func() error {
		select {
		case <-sess.Done():
			return errors.New("etcd session expired: the replica lost contact with etcd (etcd down or without quorum)")
		case <-sctx.Done():
			return nil
		}
	})
	return eg.Wait()
}

// Ready reports whether the replica holds an etcd session, and if not,
// why and since when.
func (r *Replica) Ready() (ok bool, since time.Time, cause string) { return r.health.get() }

// follow pushes every snapshot written in etcd to this replica's agents.
func (r *Replica) follow(ctx context.Context) error {
	for v := range r.store.WatchSnapshot(ctx) {
		var rec hangarv1.SnapshotRecord
		if err := proto.Unmarshal(v.Data, &rec); err != nil {
			r.log.Error("snapshot_unreadable", "version", v.Rev, "error", err.Error())
			continue
		}
		if rec.GetSnapshot() == nil {
			continue
		}
		view := newView(&rec, uint64(v.Rev), fmt.Sprintf("%s-%d", r.name, v.Rev), r.hub.latest.Load())
		assign := make(map[string][]string, len(rec.GetAssignments()))
		for id, a := range rec.GetAssignments() {
			assign[id] = a.GetProbe()
		}
		r.met.snapshotVersion.Set(float64(v.Rev))
		r.hub.broadcast(view, assign)
	}
	return nil
}

// reportShards splits a replica's report over this many etcd keys
// (reports/<replica>#<shard>), so that each value stays far below etcd's
// request size limit and a change rewrites one shard, not every agent.
const reportShards = 32

// publish writes this replica's agents' reports to etcd when they change,
// at most every publishEvery, for the leader to aggregate.
func (r *Replica) publish(ctx context.Context, sess *concurrency.Session) error {
	last := make([][]byte, reportShards)
	beat := r.clk.NewTimer(publishHeartbeats)
	defer func() { beat.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hub.changed:
		case <-beat.C():
			beat = r.clk.NewTimer(publishHeartbeats)
			if !r.hub.stale.Swap(false) {
				continue
			}
		}
		for i, rr := range r.replicaReports() {
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(rr)
			if err != nil {
				return fmt.Errorf("encode replica report: %w", err)
			}
			if last[i] != nil && bytes.Equal(data, last[i]) {
				continue
			}
			if err := r.store.PutReport(ctx, sess, shardKey(r.name, i), data); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("report_publish_failed", "error", err.Error())
				continue
			}
			last[i] = data
		}
		t := r.clk.NewTimer(publishEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// Agents returns every connected agent in the fleet: this replica's from
// memory, the others' from their reports in etcd.
func (r *Replica) Agents(ctx context.Context) ([]*hangarv1.AgentReport, error) {
	now := r.clk.Now()
	var out []*hangarv1.AgentReport
	for _, c := range r.hub.agents() {
		out = append(out, c.summary(r.name, now, true))
	}
	remote, err := r.store.Reports(ctx)
	if err != nil {
		return out, fmt.Errorf("read other replicas' reports: %w", err)
	}
	for key, data := range remote {
		if r.ownShard(key) {
			continue
		}
		var rr hangarv1.ReplicaReport
		if err := proto.Unmarshal(data, &rr); err != nil {
			continue
		}
		out = append(out, rr.GetAgents()...)
	}
	return out, nil
}

// Name returns the replica's name.
func (r *Replica) Name() string { return r.name }

// Store returns the replica's store.
func (r *Replica) Store() *store.Store { return r.store }

func shardKey(replica string, i int) string { return fmt.Sprintf("%s#%02d", replica, i) }

// ownShard reports whether a reports key belongs to this replica.
func (r *Replica) ownShard(key string) bool { return strings.HasPrefix(key, r.name+"#") }

// replicaReports summarizes the connected agents, sharded by agent id:
// what aggregation needs, without the heartbeat counters.
func (r *Replica) replicaReports() []*hangarv1.ReplicaReport {
	out := make([]*hangarv1.ReplicaReport, reportShards)
	for i := range out {
		out[i] = &hangarv1.ReplicaReport{Replica: r.name}
	}
	for _, c := range r.hub.agents() {
		h := fnv.New32a()
		_, _ = h.Write([]byte(c.id))
		i := h.Sum32() % reportShards
		out[i].Agents = append(out[i].Agents, c.summary(r.name, r.clk.Now(), false))
	}
	return out
}

// summary is the agent's stored report, with last_call rounded to the
// second (the leader looks at a 10 s window) so that steady traffic does
// not rewrite the report.
func (c *agentConn) summary(replica string, now time.Time, fresh bool) *hangarv1.AgentReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	ar := &hangarv1.AgentReport{
		Hello: c.hello, Connected: timestamppb.New(c.connected), AckedVersion: c.ackedVersion(), Replica: replica,
		Minute: c.minuteSummary(now, fresh), NackedVersion: c.sync.parked, NackError: c.nackError, Peer: c.peer,
	}
	if !fresh { // as of the last refresh: ACKs alone do not rewrite the reports in etcd
		ar.AckedVersion = c.pubAcked
	}
	if !c.lastReport.IsZero() {
		ar.Received = timestamppb.New(c.lastReport)
	}
	if c.report != nil {
		rep := &hangarv1.Report{Seq: c.report.GetSeq()}
		for _, m := range c.report.GetMembers() {
			rep.Members = append(rep.Members, &hangarv1.MemberReport{
				Member: m.GetMember(), State: m.GetState(), Probed: m.GetProbed(), EjectedIn: m.GetEjectedIn(),
				ConsecutiveFailures: m.GetConsecutiveFailures(), LastCall: roundSecond(m.GetLastCall()),
				ServerEjectedIn: m.GetServerEjectedIn(),
			})
		}
		for _, g := range c.report.GetGroups() {
			rep.Groups = append(rep.Groups, &hangarv1.GroupReport{
				Group: g.GetGroup(), Breaker: g.GetBreaker(), ConsecutiveFailures: g.GetConsecutiveFailures(),
				LastCall: roundSecond(g.GetLastCall()),
			})
		}
		rep.Seq = 0 // the sequence changes with every heartbeat
		ar.Report = rep
	}
	return ar
}

// minuteRefresh is how often the published minute counters and ACKed
// version are renewed: often enough for an operator's rates, rarely enough
// that steady traffic, and every agent's ACK of every snapshot, do not
// rewrite the reports in etcd each time.
const minuteRefresh = 5 * time.Second

// minuteSummary returns the minute's counters as of now if fresh, else as
// of at most minuteRefresh ago. c.mu must be held.
func (c *agentConn) minuteSummary(now time.Time, fresh bool) []*hangarv1.MemberReport {
	if fresh || c.minuteAt.IsZero() || now.Sub(c.minuteAt) >= minuteRefresh {
		c.minuteSum, c.minuteAt, c.pubAcked = c.minute.sum(now), now, c.ackedVersion()
	}
	return c.minuteSum
}

func roundSecond(ts *timestamppb.Timestamp) *timestamppb.Timestamp {
	if ts == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: ts.GetSeconds()}
}
