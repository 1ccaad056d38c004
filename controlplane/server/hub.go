package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/internal/clock"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// queueSize bounds the messages waiting to be sent to one agent, and the
// snapshot versions written while the agent has not ACKed the one in
// flight. An agent that falls this far behind is disconnected and resyncs
// on reconnect: it never stalls the fan-out to the others (docs/design.md
// §4.1).
const queueSize = 16

// slowAfter is how long an agent may leave a snapshot unACKed, while
// queueSize newer versions were written, before it counts as slow. Not
// the count alone: in a burst of versions (thousands of agents connecting
// to several replicas) a busy but healthy agent ACKs late, and disconnecting
// it would make the next versions (its reconnect changes the assignments).
const slowAfter = 10 * time.Second

// helloTimeout bounds the wait for an agent's Hello.
const helloTimeout = 10 * time.Second

// errSlowAgent ends the stream of an agent whose queue overflowed.
var errSlowAgent = status.Error(codes.ResourceExhausted, "hangar: agent too slow to read its snapshots; reconnect to resync")

// agentConn is one connected agent's stream.
type agentConn struct {
	id        string
	hello     *hangarv1.Hello
	queue     chan *outMsg
	wake      func()                  // starts a sender if none runs (nil in unit tests)
	sending   atomic.Bool             // a sender runs
	kick      context.CancelCauseFunc // ends the stream
	connected time.Time
	peer      string // network address, for messages

	shard int // its reports shard in etcd (shardOf)

	mu          sync.Mutex
	report      *hangarv1.Report // latest, merged
	lastReport  time.Time
	minute      minuteWindow // the last minute of heartbeat counters
	minuteSum   []*hangarv1.MemberReport
	minuteAt    time.Time // when minuteSum was taken
	pubAcked    uint64    // the ACKed version as of minuteAt
	pubReceived time.Time // lastReport as of minuteAt
	// stored is the report as published and aggregated (storedReport);
	// view is it as the leader aggregates it, and pub its AgentReport as
	// encoded for etcd; each nil until built again after a change.
	stored      *hangarv1.Report
	view        *aggregate.AgentView
	pub         []byte
	nackError   string
	assignments []string
	sync        syncState
}

// syncState is what one agent runs and what is on its way to it; see
// hub.next. Guarded by agentConn.mu.
type syncState struct {
	sub    subscription
	acked  uint64 // the version the agent runs (last ACKed on this stream)
	hash   string // hash of the fleet file the agent holds
	parked uint64 // NACKed version, not resent

	// The snapshot in flight (sent, neither ACKed nor NACKed yet); 0: none.
	inflight     uint64
	inflightFull bool // a full snapshot
	inflightCfg  bool // with the fleet file
	inflightHash string

	behind   int       // versions written while one was in flight
	sentAt   time.Time // when the one in flight was queued
	needFull bool      // the agent NACKed a delta: send a full snapshot
	extra    []string  // groups the agent began calling: send their state
}

// ackedVersion is the version the agent last ACKed. c.mu must be held.
func (c *agentConn) ackedVersion() uint64 { return c.sync.acked }

// enqueue queues m without blocking, and wakes the sender; false means
// the queue is full.
func (c *agentConn) enqueue(m *outMsg) bool {
	select {
	case c.queue <- m:
		if c.wake != nil {
			c.wake()
		}
		return true
	default:
		return false
	}
}

// historySize is how many snapshot versions a replica keeps as bases of
// deltas; an agent further behind gets a full snapshot.
const historySize = 16

// hub holds the agents connected to this replica and fans snapshots out.
type hub struct {
	log *slog.Logger
	met *Metrics
	clk clock.Clock

	latest  atomic.Pointer[view] // the newest snapshot
	mu      sync.Mutex
	conns   map[string]*agentConn
	history []*view             // the latest historySize views, oldest first
	assign  map[string][]string // agent → probed members, from the leader
	parked  map[string]uint64   // agent → the version it NACKed, across reconnects
	changed chan struct{}       // wakes the report publisher
	// dirty marks the report shards whose agents changed since they were
	// last published (heartbeats: at the next heartbeat tick).
	dirty   [reportShards]atomic.Bool
	lead    chan struct{} // wakes the leader's decision loop
	confirm confirmer     // the leader's confirmation probes (confirm.go)
}

func newHub(log *slog.Logger, met *Metrics, clk clock.Clock) *hub {
	return &hub{log: log, met: met, clk: clk, conns: map[string]*agentConn{}, parked: map[string]uint64{},
		changed: make(chan struct{}, 1), lead: make(chan struct{}, 1)}
}

// markDirty says c's published report changed in a way only the published
// summary needs (a heartbeat, a NACK): it is published within
// publishHeartbeats, and the leader sees it at its next tick.
func (h *hub) markDirty(c *agentConn) {
	c.mu.Lock()
	c.pub = nil
	c.mu.Unlock()
	h.dirty[c.shard].Store(true)
}

// notify says the agents or their states changed: publish and decide now.
func (h *hub) notify() {
	for _, ch := range []chan struct{}{h.changed, h.lead} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// add registers a connected agent and queues the current snapshot for it.
// A new stream of the same agent process (same Hello.instance, or an agent
// too old to send one) replaces the older stream: it reconnected before the
// old one was seen to end. A stream of another process with the same agent
// id is refused while the first is connected, so two agents sharing an id
// never take turns (every swap would change the fleet's reports).
func (h *hub) add(c *agentConn) error {
	c.sync.sub = newSubscription(c.hello)
	c.sync.hash = c.hello.GetConfigHash()
	h.mu.Lock()
	old := h.conns[c.id]
	if old != nil && old.hello.GetInstance() != c.hello.GetInstance() {
		h.mu.Unlock()
		return duplicateError(c.id, old)
	}
	h.conns[c.id] = c
	h.dirty[c.shard].Store(true)
	c.sync.parked = h.parked[c.id] // a NACKed version stays parked after a reconnect
	assign := h.assign[c.id]
	n := len(h.conns)
	h.mu.Unlock()
	if old != nil {
		old.kick(errors.New("hangar: replaced by a newer stream of the same agent"))
	}
	h.met.agents.Set(float64(n))
	if v := h.latest.Load(); v != nil {
		h.push(c, assign, true)
	}
	h.notify()
	return nil
}

// duplicateError refuses a second agent with the id of a connected one,
// naming the connected one.
func duplicateError(id string, old *agentConn) error {
	return status.Errorf(codes.AlreadyExists,
		"hangar: agent id %q is already connected from %s (host %q, connected since %s): "+
			"two agents cannot share an id; give each its own --agent-id, or leave --agent-id unset so each gets a unique one",
		id, old.peer, old.hello.GetHost(), old.connected.UTC().Format(time.RFC3339))
}

// remove unregisters c if it is still the agent's current stream.
func (h *hub) remove(c *agentConn) {
	h.mu.Lock()
	if h.conns[c.id] == c {
		delete(h.conns, c.id)
		h.dirty[c.shard].Store(true)
	}
	n := len(h.conns)
	h.mu.Unlock()
	h.met.agents.Set(float64(n))
	h.notify()
}

// broadcast makes v the latest snapshot and pushes it, and the
// assignments, to every agent.
func (h *hub) broadcast(v *view, assign map[string][]string) {
	h.mu.Lock()
	prev := h.latest.Load()
	if prev == nil || v.version != prev.version {
		clear(h.parked) // a new snapshot: nothing parked applies to it
	}
	if prev != nil {
		prev.retire()
	}
	h.history = append(h.history, v)
	if len(h.history) > historySize {
		h.history[0] = nil
		h.history = h.history[1:]
	}
	h.latest.Store(v)
	h.assign = assign
	conns := make([]*agentConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		h.push(c, assign[c.id], true)
	}
}

// view returns the kept view of version, nil if it is gone.
func (h *hub) view(version uint64) *view {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.history {
		if v.version == version {
			return v
		}
	}
	return nil
}

// push queues the agent's next snapshot, if any (see next), and, if
// withAssign, its assignment when it changed; a full queue disconnects the
// agent.
func (h *hub) push(c *agentConn, probe []string, withAssign bool) {
	// Decide and enqueue under c.mu, so that two pushes racing for one
	// agent (its connect, a broadcast, an ACK) keep their order.
	c.mu.Lock()
	if withAssign && c.sync.inflight != 0 {
		c.sync.behind++ // a new version, and the agent still has not ACKed the last
	}
	m := h.next(c)
	full := (m != nil && !c.enqueue(m)) || c.sync.behind >= queueSize && h.clk.Now().Sub(c.sync.sentAt) >= slowAfter
	if withAssign && !full {
		if v := h.latest.Load(); v != nil && (!slices.Equal(c.assignments, probe) || c.assignments == nil) {
			c.assignments = probe
			if c.assignments == nil {
				c.assignments = []string{}
			}
			a := &hangarv1.Assignment{Version: v.version, Probe: probe}
			full = !c.enqueue(newControlMsg(&hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Assignment{Assignment: a}}, kindAssignment))
		}
	}
	c.mu.Unlock()
	if m != nil && !full {
		h.met.pushes.Inc()
	}
	if full {
		h.slow(c)
	}
}

// next returns the agent's next snapshot, or nil if it has nothing to get
// now. One snapshot is in flight per agent at a time: the next waits for
// its ACK or NACK, and is then built against what the agent runs, so an
// agent that applies slowly gets one delta covering every version it
// missed. The first snapshot of a stream, and the one after a NACKed
// delta, is full; the others are deltas against the ACKed version. The
// fleet file goes along only when the agent lacks it. c.mu must be held.
func (h *hub) next(c *agentConn) *outMsg {
	st := &c.sync
	v := h.latest.Load()
	if v == nil || st.inflight != 0 || v.version == st.parked || (v.version <= st.acked && len(st.extra) == 0) {
		return nil
	}
	withConfig := st.hash != v.hash
	var base *view
	if st.acked != 0 && !st.needFull {
		base = h.view(st.acked)
	}
	var m *outMsg
	if base == nil {
		m = v.full(st.sub.resolve(v), st.sub.all, withConfig)
	} else {
		m = v.delta(base, st.acked, &st.sub, withConfig, st.extra)
	}
	st.inflight, st.inflightFull, st.inflightCfg, st.inflightHash = v.version, base == nil, withConfig, v.hash
	st.sentAt = h.clk.Now()
	st.needFull, st.extra = false, nil
	return m
}

// ack records that the agent applied version; false if it was not the
// snapshot in flight (a late or repeated ACK).
func (h *hub) ack(c *agentConn, version uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.sync
	if version != st.inflight {
		return false
	}
	st.acked, st.hash, st.inflight, st.behind = version, st.inflightHash, 0, 0
	return true
}

// nack records that the agent rejected version. A delta, or a full
// snapshot without the fleet file, is answered with a full snapshot with
// the file; a full snapshot with the file is parked: not sent again (on
// any stream) until the snapshot changes.
func (h *hub) nack(c *agentConn, version uint64, reason string) {
	c.mu.Lock()
	st := &c.sync
	if version != st.inflight {
		c.mu.Unlock()
		return
	}
	st.inflight, st.behind = 0, 0
	c.nackError = reason
	park := st.inflightFull && st.inflightCfg
	if park {
		st.parked = version
	} else {
		st.needFull, st.hash = true, ""
	}
	c.mu.Unlock()
	if park {
		h.mu.Lock()
		h.parked[c.id] = version
		h.mu.Unlock()
	}
	h.push(c, nil, false)
}

// called subscribes the agent to the groups it reports calls to, and sends
// their state.
func (h *hub) called(c *agentConn, r *hangarv1.Report) {
	v := h.latest.Load()
	if v == nil {
		return
	}
	added := false
	c.mu.Lock()
	if !c.sync.sub.all {
		c.sync.sub.resolve(v)
		for _, g := range r.GetGroups() {
			if g.GetLastCall() != nil && v.groups[g.GetGroup()] != nil && c.sync.sub.add(g.GetGroup()) {
				c.sync.extra = append(c.sync.extra, g.GetGroup())
				added = true
			}
		}
	}
	c.mu.Unlock()
	if added {
		h.push(c, nil, false)
	}
}

func (h *hub) slow(c *agentConn) {
	h.met.slowDisconnects.Inc()
	h.log.Warn("agent_disconnected_slow", "agent_id", c.id, "queue", queueSize)
	c.kick(errSlowAgent)
}

// agents returns the connected agents' streams.
func (h *hub) agents() []*agentConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*agentConn, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
