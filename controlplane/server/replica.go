package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/backoff"
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
	b := newRetry(r.clk)
	for ctx.Err() == nil {
		err := r.session(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		if r.store.Closed() {
			return fmt.Errorf("etcd client closed: %w", err)
		}
		r.health.lost(r.clk.Now(), err)
		d := b.Next()
		r.log.Warn("etcd_session_lost", "replica", r.name, "error", errString(err), "retry_in", d.String())
		if !backoff.Sleep(ctx, r.clk, d) {
			return nil
		}
	}
	return nil
}

// session runs one etcd session: register, then publish and campaign until
// the session ends. It returns why it ended.
func (r *Replica) session(ctx context.Context, b *backoff.Backoff) error {
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
// at most every publishEvery, for the leader to aggregate. Only the
// shards whose agents changed are encoded again, each agent's part from
// its own cached encoding (agentConn.published).
func (r *Replica) publish(ctx context.Context, sess *concurrency.Session) error {
	last := make([][]byte, reportShards)
	var epoch time.Time
	beat := r.clk.NewTimer(publishHeartbeats)
	defer func() { beat.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hub.changed:
		case <-beat.C():
			beat = r.clk.NewTimer(publishHeartbeats)
		}
		now := r.clk.Now()
		if e := now.Truncate(minuteRefresh); !e.Equal(epoch) { // every agent's counters are renewed
			epoch = e
			for i := range r.hub.dirty {
				r.hub.dirty[i].Store(true)
			}
		}
		if err := r.publishDirty(ctx, sess, last, now); err != nil {
			return err
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

// publishDirty writes the dirty shards that differ from what was last
// written (last, by shard). A shard that fails stays dirty.
func (r *Replica) publishDirty(ctx context.Context, sess *concurrency.Session, last [][]byte, now time.Time) error {
	var dirty [reportShards]bool
	any := false
	for i := range dirty {
		dirty[i] = r.hub.dirty[i].Swap(false)
		any = any || dirty[i]
	}
	if !any {
		return nil
	}
	byShard := make([][]*agentConn, reportShards)
	for _, c := range r.hub.agents() { // sorted by id
		if dirty[c.shard] {
			byShard[c.shard] = append(byShard[c.shard], c)
		}
	}
	for i := range dirty {
		if !dirty[i] {
			continue
		}
		data := r.encodeShard(byShard[i], now)
		if last[i] != nil && bytes.Equal(data, last[i]) {
			continue
		}
		if err := r.store.PutReport(ctx, sess, shardKey(r.name, i), data); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.hub.dirty[i].Store(true)
			r.log.Warn("report_publish_failed", "error", err.Error())
			continue
		}
		last[i] = data
	}
	return nil
}

// encodeShard returns the ReplicaReport of conns as its deterministic
// encoding, built from each agent's cached one.
func (r *Replica) encodeShard(conns []*agentConn, now time.Time) []byte {
	b := protowire.AppendTag(nil, replicaReportReplica, protowire.BytesType)
	b = protowire.AppendString(b, r.name)
	for _, c := range conns {
		b = protowire.AppendTag(b, replicaReportAgents, protowire.BytesType)
		b = protowire.AppendBytes(b, c.published(r.name, now))
	}
	return b
}

// Field numbers of hangar.v1.ReplicaReport.
const (
	replicaReportReplica = 1
	replicaReportAgents  = 2
)

// shardOf is the reports shard of an agent id.
func shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % reportShards)
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

// published returns the agent's AgentReport as encoded for etcd: built
// again only after its report changed or its counters were renewed (every
// minuteRefresh, on the clock's boundaries, so that every agent's renewal
// falls in the same publishing round).
func (c *agentConn) published(replica string, now time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil && !c.minuteAt.Before(now.Truncate(minuteRefresh)) {
		return c.pub
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.summaryLocked(replica, now, false))
	if err != nil { // cannot happen: every field is valid
		return nil
	}
	c.pub = data
	return data
}

// summary is the agent's report with its stored report (storedReport). If
// fresh, its counters, ACKed version and last report are as of now; else
// as of their last renewal, at most minuteRefresh ago.
func (c *agentConn) summary(replica string, now time.Time, fresh bool) *hangarv1.AgentReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.summaryLocked(replica, now, fresh)
}

// summaryLocked is summary with c.mu held.
func (c *agentConn) summaryLocked(replica string, now time.Time, fresh bool) *hangarv1.AgentReport {
	ar := &hangarv1.AgentReport{
		Hello: c.hello, Connected: timestamppb.New(c.connected), AckedVersion: c.ackedVersion(), Replica: replica,
		Minute: c.minuteSummary(now, fresh), NackedVersion: c.sync.parked, NackError: c.nackError, Peer: c.peer,
		Report: c.stored,
	}
	received := c.lastReport
	if !fresh { // as of the last renewal: ACKs and heartbeats alone do not rewrite the reports in etcd
		ar.AckedVersion, received = c.pubAcked, c.pubReceived
	}
	if !received.IsZero() {
		ar.Received = timestamppb.New(received)
	}
	return ar
}

// minuteRefresh is how often the published minute counters, ACKed version
// and time of the last report are renewed: often enough for an operator's
// rates, rarely enough that steady traffic, and every agent's ACK of every
// snapshot, do not rewrite the reports in etcd each time. It is also the
// granularity of the published last calls (storedReport).
const minuteRefresh = 5 * time.Second

// minuteSummary returns the minute's counters as of now if fresh, else as
// of their last renewal, renewed if it is from before the current
// minuteRefresh period. c.mu must be held.
func (c *agentConn) minuteSummary(now time.Time, fresh bool) []*hangarv1.MemberReport {
	if fresh {
		return c.minute.sum(now)
	}
	if c.minuteAt.IsZero() || c.minuteAt.Before(now.Truncate(minuteRefresh)) {
		c.minuteSum, c.minuteAt, c.pubAcked, c.pubReceived = c.minute.sum(now), now, c.ackedVersion(), c.lastReport
	}
	return c.minuteSum
}

// setStored makes r the agent's stored report; false if it equals the
// one stored. c.mu must be held.
func (c *agentConn) setStored(r *hangarv1.Report) bool {
	if c.stored != nil && sameStored(c.stored, r) {
		return false
	}
	c.stored, c.view, c.pub = r, nil, nil
	return true
}

// aggView returns the agent's stored report as the leader aggregates it.
func (c *agentConn) aggView() aggregate.AgentView {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view == nil {
		v := AgentView(&hangarv1.AgentReport{Hello: c.hello, Report: c.stored})
		c.view = &v
	}
	return *c.view
}

// storedReport is what of a report is published and aggregated: the
// states, without the sequence and the counters, and with each last call
// rounded up to the next multiple of minuteRefresh. The leader asks
// whether a call is within the 10 s window (aggregate.CallWindow): a
// caller counts for the whole window and at most minuteRefresh more, and
// an agent that keeps calling rewrites its report once per minuteRefresh,
// not at every heartbeat.
func storedReport(r *hangarv1.Report) *hangarv1.Report {
	rep := &hangarv1.Report{}
	for _, m := range r.GetMembers() {
		rep.Members = append(rep.Members, &hangarv1.MemberReport{
			Member: m.GetMember(), State: m.GetState(), Probed: m.GetProbed(), EjectedIn: m.GetEjectedIn(),
			ConsecutiveFailures: m.GetConsecutiveFailures(), LastCall: roundUp(m.GetLastCall()),
			ServerEjectedIn: m.GetServerEjectedIn(),
		})
	}
	for _, g := range r.GetGroups() {
		rep.Groups = append(rep.Groups, &hangarv1.GroupReport{
			Group: g.GetGroup(), Breaker: g.GetBreaker(), ConsecutiveFailures: g.GetConsecutiveFailures(),
			LastCall: roundUp(g.GetLastCall()),
		})
	}
	return rep
}

// sameStored reports whether two stored reports (storedReport) are equal:
// proto.Equal, without reflection (it runs for every heartbeat).
func sameStored(a, b *hangarv1.Report) bool {
	if len(a.GetMembers()) != len(b.GetMembers()) || len(a.GetGroups()) != len(b.GetGroups()) {
		return false
	}
	for i, x := range a.GetMembers() {
		y := b.GetMembers()[i]
		if x.GetMember() != y.GetMember() || x.GetState() != y.GetState() || x.GetProbed() != y.GetProbed() ||
			x.GetConsecutiveFailures() != y.GetConsecutiveFailures() || x.GetLastCall().GetSeconds() != y.GetLastCall().GetSeconds() ||
			(x.GetLastCall() == nil) != (y.GetLastCall() == nil) ||
			!slices.Equal(x.GetEjectedIn(), y.GetEjectedIn()) || !slices.Equal(x.GetServerEjectedIn(), y.GetServerEjectedIn()) {
			return false
		}
	}
	for i, x := range a.GetGroups() {
		y := b.GetGroups()[i]
		if x.GetGroup() != y.GetGroup() || x.GetBreaker() != y.GetBreaker() || x.GetConsecutiveFailures() != y.GetConsecutiveFailures() ||
			x.GetLastCall().GetSeconds() != y.GetLastCall().GetSeconds() || (x.GetLastCall() == nil) != (y.GetLastCall() == nil) {
			return false
		}
	}
	return true
}

// roundUp rounds ts up to a multiple of minuteRefresh.
func roundUp(ts *timestamppb.Timestamp) *timestamppb.Timestamp {
	if ts == nil {
		return nil
	}
	step := int64(minuteRefresh / time.Second)
	s := ts.GetSeconds()
	if ts.GetNanos() > 0 || s%step != 0 {
		s = (s/step + 1) * step
	}
	return &timestamppb.Timestamp{Seconds: s}
}
