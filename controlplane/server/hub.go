package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// queueSize bounds the messages waiting to be sent to one agent. An agent
// that falls this far behind is disconnected and resyncs on reconnect: it
// never stalls the fan-out to the others (docs/design.md §4.1).
const queueSize = 16

// helloTimeout bounds the wait for an agent's Hello.
const helloTimeout = 10 * time.Second

// errSlowAgent ends the stream of an agent whose queue overflowed.
var errSlowAgent = status.Error(codes.ResourceExhausted, "hangar: agent too slow to read its snapshots; reconnect to resync")

// agentConn is one connected agent's stream.
type agentConn struct {
	id        string
	hello     *hangarv1.Hello
	queue     chan *hangarv1.ControlMessage
	kick      context.CancelCauseFunc // ends the stream
	connected time.Time
	peer      string // network address, for messages

	mu          sync.Mutex
	report      *hangarv1.Report // latest, merged
	lastReport  time.Time
	minute      minuteWindow // the last minute of heartbeat counters
	minuteSum   []*hangarv1.MemberReport
	minuteAt    time.Time // when minuteSum was taken
	acked       uint64    // last ACKed snapshot version
	parked      uint64    // NACKed version, not resent
	sent        uint64    // last snapshot version queued
	nackError   string
	assignments []string
}

// enqueue queues msg without blocking; false means the queue is full.
func (c *agentConn) enqueue(msg *hangarv1.ControlMessage) bool {
	select {
	case c.queue <- msg:
		return true
	default:
		return false
	}
}

// hub holds the agents connected to this replica and fans snapshots out.
type hub struct {
	log *slog.Logger
	met *Metrics

	mu       sync.Mutex
	conns    map[string]*agentConn
	snapshot *hangarv1.Snapshot  // the latest, sent to new agents
	assign   map[string][]string // agent → probed members, from the leader
	parked   map[string]uint64   // agent → the version it NACKed, across reconnects
	changed  chan struct{}       // wakes the report publisher
	lead     chan struct{}       // wakes the leader's decision loop
}

func newHub(log *slog.Logger, met *Metrics) *hub {
	return &hub{log: log, met: met, conns: map[string]*agentConn{}, parked: map[string]uint64{},
		changed: make(chan struct{}, 1), lead: make(chan struct{}, 1)}
}

// notifyPublisher says reports changed in a way only the published summary
// needs (a heartbeat): the leader sees it at its next tick.
func (h *hub) notifyPublisher() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
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
	h.mu.Lock()
	old := h.conns[c.id]
	if old != nil && old.hello.GetInstance() != c.hello.GetInstance() {
		h.mu.Unlock()
		return duplicateError(c.id, old)
	}
	h.conns[c.id] = c
	c.parked = h.parked[c.id] // a NACKed version stays parked after a reconnect
	snap, assign := h.snapshot, h.assign[c.id]
	n := len(h.conns)
	h.mu.Unlock()
	if old != nil {
		old.kick(errors.New("hangar: replaced by a newer stream of the same agent"))
	}
	h.met.agents.Set(float64(n))
	if snap != nil {
		h.push(c, snap, assign)
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
	}
	n := len(h.conns)
	h.mu.Unlock()
	h.met.agents.Set(float64(n))
	h.notify()
}

// broadcast sends a new snapshot and the assignments to every agent.
func (h *hub) broadcast(snap *hangarv1.Snapshot, assign map[string][]string) {
	h.mu.Lock()
	if h.snapshot == nil || snap.GetVersion() != h.snapshot.GetVersion() {
		clear(h.parked) // a new snapshot: nothing parked applies to it
	}
	h.snapshot, h.assign = snap, assign
	conns := make([]*agentConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		h.push(c, snap, assign[c.id])
	}
}

// push queues snap (unless this agent NACKed that version, or already has
// it) and its assignment; a full queue disconnects the agent.
func (h *hub) push(c *agentConn, snap *hangarv1.Snapshot, probe []string) {
	// Decide and enqueue under c.mu, so that two pushes racing for one
	// agent (its connect and a broadcast) keep their order in its queue.
	c.mu.Lock()
	skipSnap := snap.GetVersion() == c.parked || snap.GetVersion() <= c.sent
	sameAssign := slices.Equal(c.assignments, probe) && c.sent != 0
	full, pushed := false, false
	if !skipSnap {
		c.sent = snap.GetVersion()
		// Every agent gets the same message (read-only from here on): one
		// snapshot costs no copy per agent, only its encoding on the wire.
		full = !c.enqueue(&hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Snapshot{Snapshot: snap}})
		pushed = !full
	}
	c.assignments = probe
	if !full && !sameAssign {
		a := &hangarv1.Assignment{Version: snap.GetVersion(), Probe: probe}
		full = !c.enqueue(&hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Assignment{Assignment: a}})
	}
	c.mu.Unlock()
	if pushed {
		h.met.pushes.Inc()
	}
	if full {
		h.slow(c)
	}
}

func (h *hub) slow(c *agentConn) {
	h.met.slowDisconnects.Inc()
	h.log.Warn("agent_disconnected_slow", "agent_id", c.id, "queue", queueSize)
	c.kick(errSlowAgent)
}

// park records that agent NACKed version: it is not sent to it again (on
// any stream) until the snapshot changes.
func (h *hub) park(agent string, version uint64) {
	h.mu.Lock()
	h.parked[agent] = version
	h.mu.Unlock()
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
