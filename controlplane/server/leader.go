package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// configDebounce delays a decision after a config change, so that a burst
// of writes becomes one snapshot (docs/design.md §4.2: ≤ 100 ms).
const configDebounce = 50 * time.Millisecond

// tick re-decides periodically, so that calls leaving the 10 s window
// are noticed without a report.
const tick = time.Second

// campaign runs for leadership until ctx ends; while leader, it decides.
func (r *Replica) campaign(ctx context.Context, sess *concurrency.Session) error {
	for ctx.Err() == nil {
		l, err := r.store.Campaign(ctx, sess, r.name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("campaign: %w", err)
		}
		r.log.Info("leader_elected", "replica", r.name)
		r.met.leader.Set(1)
		err = r.lead(ctx, l)
		r.met.leader.Set(0)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = l.Resign(rctx)
			cancel()
			return nil
		}
		r.log.Warn("leadership_lost", "replica", r.name, "error", errString(err))
	}
	return nil
}

// decider is the leader's state between decisions.
type decider struct {
	yaml    []byte
	sha     string // fleetfile.Hash(yaml)
	fleet   *fleetfile.Fleet
	drained map[string][]string
	remote  map[string][]byte       // other replicas' reports
	decoded map[string]*remoteShard // remote, decoded, by key
	resets  map[string]uint64       // operator breaker resets by group
	last    []byte                  // content of the last snapshot written, without assignments
	// lastAssign is the assignments of the last snapshot written.
	lastAssign map[string][]string
	prev       aggregate.Output

	// reset lists the groups reset since the last decision; staleOpen
	// holds, by group, the agents whose breaker votes predate the group's
	// latest reset (see ignoreStaleOpen).
	reset     []string
	staleOpen map[string]map[string]bool

	// seen counts which of the drains, reports and resets watches have
	// delivered their current state: no decision before all three did (a
	// decision without the drains would undrain members fleet-wide).
	seenDrains, seenReports, seenResets bool
}

// lead aggregates every agent's reports and writes a snapshot whenever the
// decision changes, until leadership is lost.
func (r *Replica) lead(ctx context.Context, l *store.Leadership) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	configs := r.store.WatchConfig(ctx)
	drains := r.store.WatchDrained(ctx)
	reports := r.store.WatchReports(ctx)
	resets := r.store.WatchBreakerResets(ctx)
	d := &decider{}
	ticker := r.clk.NewTimer(tick)
	defer func() { ticker.Stop() }()
	var debounce <-chan time.Time
	for {
		decide := false
		select {
		case <-ctx.Done():
			return nil
		case <-l.Done():
			return errors.New("etcd reports a new leader")
		case v, ok := <-configs:
			if !ok {
				return nil
			}
			if f, err := fleetfile.ParseAs(fleetfile.ControlPlane, "etcd:config", v.Data); err != nil {
				r.log.Error("stored_config_invalid", "revision", v.Rev, "error", err.Error())
			} else {
				d.yaml, d.sha, d.fleet = v.Data, fleetfile.Hash(v.Data), f
				t := r.clk.NewTimer(configDebounce)
				debounce = t.C()
			}
		case <-debounce:
			debounce, decide = nil, true
		case m, ok := <-drains:
			if !ok {
				return nil
			}
			d.drained, d.seenDrains, decide = m, true, true
		case m, ok := <-resets:
			if !ok {
				return nil
			}
			if d.resets != nil { // nil until the first, initial, state
				for g, n := range m {
					if n > d.resets[g] {
						d.reset = append(d.reset, g)
					}
				}
			}
			d.resets, d.seenResets, decide = m, true, true
		case m, ok := <-reports:
			if !ok {
				return nil
			}
			for key := range m {
				if r.ownShard(key) {
					delete(m, key) // this replica's agents are read from memory
				}
			}
			// Its own shards, rewritten on every ACK, change nothing here.
			if !d.seenReports || !maps.EqualFunc(m, d.remote, bytes.Equal) {
				d.remote, d.seenReports, decide = m, true, true
			}
		case <-r.hub.lead:
			decide = true
		case <-ticker.C():
			ticker = r.clk.NewTimer(tick)
			decide = true
		}
		if !decide || d.fleet == nil || !(d.seenDrains && d.seenReports && d.seenResets) {
			continue
		}
		if err := r.decide(ctx, l, d); err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("decision_failed", "error", err.Error())
		}
	}
}

// decide computes the routing state and writes a snapshot if it changed.
func (r *Replica) decide(ctx context.Context, l *store.Leadership, d *decider) error {
	views := r.localViews(d.sha)
	views = append(views, d.remoteViews(r.log)...)
	d.ignoreStaleOpen(views)
	now := r.clk.Now()
	out := aggregate.Compute(aggregate.Input{Fleet: d.fleet, Agents: views, Drained: d.drained, Now: now,
		Confirmed: r.hub.confirm.failed(now)})
	r.requestConfirmations(ctx, d.fleet, out, views, now)
	rec := record(d.yaml, d.fleet, out, d.resets)
	// The content without the assignments (one per agent: comparing the
	// maps is much cheaper than encoding them at every decision).
	assign := rec.Assignments
	rec.Assignments = nil
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	rec.Assignments = assign
	if bytes.Equal(content, d.last) && d.lastAssign != nil && maps.EqualFunc(out.Assignments, d.lastAssign, slices.Equal) {
		return nil
	}
	rec.Snapshot.Created = timestamppb.New(r.clk.Now())
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	rev, err := r.store.PutSnapshot(ctx, l, data)
	if err != nil {
		return err
	}
	r.met.decisions.Inc()
	r.events(ctx, d.prev, out, rev)
	d.last, d.lastAssign, d.prev = content, out.Assignments, out
	r.log.Info("snapshot_written", "version", rev, "agents", len(views))
	return nil
}

// remoteShard is one of the other replicas' report shards as decoded.
type remoteShard struct {
	data  []byte
	sha   string
	views []aggregate.AgentView
}

// remoteViews returns the other replicas' agents that count, decoding only
// the shards that changed since the last decision.
func (d *decider) remoteViews(log *slog.Logger) []aggregate.AgentView {
	if d.decoded == nil {
		d.decoded = map[string]*remoteShard{}
	}
	var views []aggregate.AgentView
	for key, data := range d.remote {
		sh := d.decoded[key]
		if sh == nil || sh.sha != d.sha || !bytes.Equal(sh.data, data) {
			sh = &remoteShard{data: data, sha: d.sha}
			var rr hangarv1.ReplicaReport
			if err := proto.Unmarshal(data, &rr); err != nil {
				log.Warn("replica_report_unreadable", "replica", key, "error", err.Error())
			}
			for _, ar := range rr.GetAgents() {
				if !IsLocal(ar.GetHello(), d.sha) {
					sh.views = append(sh.views, AgentView(ar))
				}
			}
			d.decoded[key] = sh
		}
		views = append(views, sh.views...)
	}
	for key := range d.decoded {
		if _, ok := d.remote[key]; !ok {
			delete(d.decoded, key)
		}
	}
	return views
}

// ignoreStaleOpen keeps an operator's breaker reset from being undone by
// the votes it overrides. Until an agent has applied the reset, its
// reports still show the breaker open; a snapshot counting those votes
// would say the breaker is open fleet-wide, and every agent forces its
// breaker open again at its next call. So the agents whose breaker was not
// closed when the group was reset have their vote counted as closed until
// they report it closed; votes after that count again.
func (d *decider) ignoreStaleOpen(views []aggregate.AgentView) {
	for _, g := range d.reset {
		stale := map[string]bool{}
		for _, v := range views {
			if v.Groups[g].Breaker != aggregate.Closed {
				stale[v.ID] = true
			}
		}
		if d.staleOpen == nil {
			d.staleOpen = map[string]map[string]bool{}
		}
		d.staleOpen[g] = stale
	}
	d.reset = nil
	for g, stale := range d.staleOpen {
		for i := range views {
			v := &views[i]
			if !stale[v.ID] {
				continue
			}
			if gv, ok := v.Groups[g]; ok && gv.Breaker != aggregate.Closed {
				gv.Breaker = aggregate.Closed
				v.Groups = maps.Clone(v.Groups) // the agent's cached view is shared
				v.Groups[g] = gv
			} else if ok {
				delete(stale, v.ID)
			}
		}
		if len(stale) == 0 {
			delete(d.staleOpen, g)
		}
	}
}

// localViews reads this replica's agents from memory, leaving out those
// that run another fleet (IsLocal).
func (r *Replica) localViews(configSHA string) []aggregate.AgentView {
	conns := r.hub.agents()
	views := make([]aggregate.AgentView, 0, len(conns))
	for _, c := range conns {
		if !IsLocal(c.hello, configSHA) {
			views = append(views, c.aggView())
		}
	}
	return views
}

// AgentView converts a stored agent report for aggregation.
func AgentView(ar *hangarv1.AgentReport) aggregate.AgentView {
	v := aggregate.AgentView{
		ID: ar.GetHello().GetAgentId(), Serves: ar.GetHello().GetServers(),
		Members: map[string]aggregate.MemberView{}, Groups: map[string]aggregate.GroupView{},
	}
	// Hello lists the members of the fleet the agent had when it connected:
	// none for an agent that takes its fleet from the first snapshot. Its
	// reports list the members it serves now.
	if ms := ar.GetReport().GetMembers(); len(ms) > 0 {
		v.Serves = make([]string, 0, len(ms))
		for _, m := range ms {
			v.Serves = append(v.Serves, m.GetMember())
		}
	}
	for _, m := range ar.GetReport().GetMembers() {
		mv := aggregate.MemberView{Probed: m.GetProbed(), EjectedIn: m.GetEjectedIn(), ServerEjectedIn: m.GetServerEjectedIn()}
		switch m.GetState() {
		case hangarv1.MemberState_MEMBER_STATE_READY:
			mv.Health = aggregate.Ready
		case hangarv1.MemberState_MEMBER_STATE_DEGRADED, hangarv1.MemberState_MEMBER_STATE_DEAD:
			mv.Health = aggregate.Degraded
		}
		if m.GetLastCall() != nil {
			mv.LastCall = m.GetLastCall().AsTime()
		}
		v.Members[m.GetMember()] = mv
	}
	for _, g := range ar.GetReport().GetGroups() {
		gv := aggregate.GroupView{Breaker: g.GetBreaker()}
		if g.GetLastCall() != nil {
			gv.LastCall = g.GetLastCall().AsTime()
		}
		v.Groups[g.GetGroup()] = gv
	}
	return v
}

// record builds the stored snapshot from a decision (without Created).
func record(yaml []byte, fleet *fleetfile.Fleet, out aggregate.Output, resets map[string]uint64) *hangarv1.SnapshotRecord {
	snap := &hangarv1.Snapshot{FleetConfig: yaml, ConfigHash: fleetfile.Hash(yaml)}
	for _, id := range fleet.Order {
		if _, ok := fleet.Servers[id]; ok {
			m := out.Members[id]
			st := &hangarv1.ServerState{Id: id, State: hangarv1.MemberState_MEMBER_STATE_READY}
			if m.Degraded {
				st.State, st.Reason = hangarv1.MemberState_MEMBER_STATE_DEGRADED, m.Reason
			}
			snap.Servers = append(snap.Servers, st)
		}
		if _, ok := fleet.Groups[id]; ok {
			g := out.Groups[id]
			gs := &hangarv1.GroupState{Id: id, State: g.State, Rotation: g.Rotation, Drained: g.Drained,
				ActiveMember: g.ActiveMember, BreakerReset: resets[id]}
			if g.BreakerOpen {
				gs.Breaker = hangarv1.BreakerState_BREAKER_STATE_OPEN
			}
			snap.Groups = append(snap.Groups, gs)
		}
	}
	rec := &hangarv1.SnapshotRecord{Snapshot: snap, Assignments: map[string]*hangarv1.Assignment{},
		Members: make(map[string]*hangarv1.GroupMembers, len(fleet.Groups))}
	for id, g := range fleet.Groups {
		m := &hangarv1.GroupMembers{}
		for _, mm := range g.Members {
			m.Ids = append(m.Ids, mm.ID)
		}
		rec.Members[id] = m
	}
	for agent, members := range out.Assignments {
		rec.Assignments[agent] = &hangarv1.Assignment{Probe: members}
	}
	return rec
}

// events records what changed between two decisions in the event log.
func (r *Replica) events(ctx context.Context, prev, next aggregate.Output, rev int64) {
	ids := make([]string, 0, len(next.Groups))
	for id := range next.Groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g, p := next.Groups[id], prev.Groups[id]
		was := map[string]bool{}
		for _, m := range p.Members {
			was[m.ID] = m.InRotation
		}
		for _, m := range g.Members {
			in, known := was[m.ID]
			switch {
			case m.InRotation == in && known, m.InRotation && !known:
				continue
			case m.InRotation:
				r.event(ctx, store.Event{Kind: "member_in_rotation", Group: id, Server: m.ID, Message: fmt.Sprintf("back in global rotation (snapshot %d)", rev)})
			default:
				r.event(ctx, store.Event{Kind: "member_out_of_rotation", Group: id, Server: m.ID, Message: fmt.Sprintf("out of global rotation: %s (snapshot %d)", m.Reason, rev)})
			}
		}
		if g.BreakerOpen != p.BreakerOpen {
			kind := "circuit_closed"
			if g.BreakerOpen {
				kind = "circuit_opened"
			}
			r.event(ctx, store.Event{Kind: kind, Group: id, Message: fmt.Sprintf("%d of %d calling agents have it open", g.OpenVotes, g.Callers)})
		}
		if g.ActiveMember != p.ActiveMember && p.ActiveMember != "" {
			r.event(ctx, store.Event{Kind: "active_member_changed", Group: id, Server: g.ActiveMember, Message: "from " + p.ActiveMember})
		}
	}
}

func (r *Replica) event(ctx context.Context, e store.Event) {
	r.log.Info(e.Kind, "group", e.Group, "member", e.Server, "message", e.Message)
	if _, err := r.store.AppendEvent(ctx, e); err != nil && ctx.Err() == nil {
		r.log.Warn("event_append_failed", "error", err.Error())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
