package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Confirmation probes (docs/design.md §4.2): when an agent ejects a member on
// path evidence and the quorum of callers does not (yet) agree, the leader
// asks another agent that serves the member (an assigned prober first) to
// probe it at once with a short deadline. A failed confirmation ejects the
// member globally (aggregate.Input.Confirmed); a passing one leaves it in,
// since one agent's bad path must not eject it for the others.
const (
	// kindConfirm labels the bytes of confirmation probes sent.
	kindConfirm = "confirm_probe"
	// confirmHold is how long a confirmation's result stands; a member
	// still ejected then is confirmed again.
	confirmHold = 10 * time.Second
	// confirmGrace is added to the probe deadline before an unanswered
	// request is given up (the agent may have gone).
	confirmGrace = 2 * time.Second
)

// confirmer holds the leader's confirmation requests and their results. It
// is safe for concurrent use: the leader's decision loop asks, the agent
// streams answer.
type confirmer struct {
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]confirmRequest
	results map[string]confirmResult // by member
	relayed map[uint64]string        // requests of another replica's leader sent to our agents: id → agent
}

type confirmRequest struct {
	member, agent string
	expires       time.Time
}

type confirmResult struct {
	ok    bool
	agent string
	at    time.Time
}

// failed returns the members whose confirmation failed within confirmHold.
func (c *confirmer) failed(now time.Time) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for m, r := range c.results {
		if !r.ok && now.Sub(r.at) < confirmHold {
			out[m] = true
		}
	}
	return out
}

// due reports whether member needs a confirmation now: none pending and no
// result within confirmHold. Expired requests are dropped.
func (c *confirmer) due(member string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.pending {
		if now.After(p.expires) {
			delete(c.pending, id)
		} else if p.member == member {
			return false
		}
	}
	r, ok := c.results[member]
	return !ok || now.Sub(r.at) >= confirmHold
}

// start records a request and returns its id.
func (c *confirmer) start(member, agent string, now, expires time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[uint64]confirmRequest{}
	}
	if c.nextID == 0 {
		// Ids cross replicas (confirmrelay.go): a new leader must not
		// reuse its predecessor's.
		c.nextID = uint64(now.UnixNano())
	}
	c.nextID++
	c.pending[c.nextID] = confirmRequest{member: member, agent: agent, expires: expires}
	return c.nextID
}

// finish records the answer to request id from agent; false if it answers
// no pending request of that agent.
func (c *confirmer) finish(id uint64, agent string, ok bool, now time.Time) (member string, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, found := c.pending[id]
	if !found || p.agent != agent {
		return "", false
	}
	delete(c.pending, id)
	if c.results == nil {
		c.results = map[string]confirmResult{}
	}
	c.results[p.member] = confirmResult{ok: ok, agent: agent, at: now}
	return p.member, true
}

// requestConfirmations asks for a confirmation of every member that an
// agent has out of a group's local rotation while the group's global
// rotation still has it (path evidence short of the quorum).
func (r *Replica) requestConfirmations(ctx context.Context, fleet *fleetfile.Fleet, out aggregate.Output, views []aggregate.AgentView, now time.Time) {
	for _, g := range out.Groups {
		gc := fleet.Groups[g.ID]
		for _, m := range g.Members {
			if !m.InRotation || len(m.Ejecting) == 0 || !r.hub.confirm.due(m.ID, now) {
				continue
			}
			r.askConfirmation(ctx, m, out.Members[m.ID].Probers, views, gc.Health.ConfirmTimeout, now)
		}
	}
}

// askConfirmation sends one ConfirmProbe for m to an agent that does not
// eject it: an assigned prober first, else any agent that serves the
// member; one connected to this replica directly, else one connected to
// another replica through etcd (askRemote).
func (r *Replica) askConfirmation(ctx context.Context, m aggregate.GroupMember, probers []string, views []aggregate.AgentView, deadline time.Duration, now time.Time) {
	if deadline <= 0 {
		deadline = fleetfile.DefaultConfirmTimeout
	}
	conns := r.hub.agents()
	pick := func(ok func(*agentConn) bool) *agentConn {
		for _, c := range conns {
			if !slices.Contains(m.Ejecting, c.id) && ok(c) {
				return c
			}
		}
		return nil
	}
	c := pick(func(c *agentConn) bool { return slices.Contains(probers, c.id) })
	if c == nil {
		c = pick(func(c *agentConn) bool { return c.serves(m.ID) })
	}
	if c == nil {
		r.askRemote(ctx, m, probers, views, deadline, now)
		return
	}
	id := r.hub.confirm.start(m.ID, c.id, now, now.Add(deadline+confirmGrace))
	msg := &hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_ConfirmProbe{ConfirmProbe: &hangarv1.ConfirmProbe{
		Id: id, Member: m.ID, DeadlineMs: uint32(deadline / time.Millisecond)}}}
	if !c.enqueue(newControlMsg(msg, kindConfirm)) {
		r.log.Warn("confirm_probe_dropped", "member", m.ID, "agent_id", c.id, "reason", "queue full")
		return
	}
	r.log.Info("confirm_probe_sent", "member", m.ID, "agent_id", c.id, "ejecting", m.Ejecting, "deadline_ms", deadline.Milliseconds())
}

// confirmed takes an agent's answer to a confirmation probe and makes the
// leader decide at once.
func (s *agentService) confirmed(c *agentConn, res *hangarv1.ConfirmResult, now time.Time) {
	member, ok := s.hub.confirm.finish(res.GetId(), c.id, res.GetOk(), now)
	if !ok {
		s.relayResult(c, res)
		return
	}
	s.log.Info("confirm_probe_result", "member", member, "agent_id", c.id, "ok", res.GetOk(), "error", res.GetError())
	s.hub.notify()
}

// serves reports whether the agent can call member (from its latest
// report, else its Hello).
func (c *agentConn) serves(member string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.report.GetMembers() {
		if m.GetMember() == member {
			return true
		}
	}
	return slices.Contains(c.hello.GetServers(), member)
}
