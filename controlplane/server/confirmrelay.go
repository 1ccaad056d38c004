package server

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Confirmation probes across replicas. The leader's pick for a
// confirmation is often connected to a follower (several replicas are the
// HA default). The leader then writes the request under a leased etcd key
// (confirm/req/<id>) that every replica watches; the replica holding that
// agent's stream sends the probe and writes the agent's answer under
// confirm/res/<id>, which the leader's own watch takes as if its agent had
// answered. Both keys end with their leases.

// confirmWire is the value of a confirmation key: a request (Member,
// DeadlineMs) or a result (OK, Error), for Agent.
type confirmWire struct {
	Agent      string `json:"agent"`
	Member     string `json:"member,omitempty"`
	DeadlineMs uint32 `json:"deadline_ms,omitempty"`
	OK         bool   `json:"ok,omitempty"`
	Error      string `json:"error,omitempty"`
}

// confirmWrite bounds one write of a confirmation key.
const confirmWrite = 2 * time.Second

// askRemote asks an agent connected to another replica: an assigned
// prober first, else any agent that serves the member, never one that
// ejects it.
func (r *Replica) askRemote(ctx context.Context, m aggregate.GroupMember, probers []string, views []aggregate.AgentView, deadline time.Duration, now time.Time) {
	pick := func(ok func(aggregate.AgentView) bool) string {
		for _, v := range views {
			if !slices.Contains(m.Ejecting, v.ID) && ok(v) {
				return v.ID
			}
		}
		return ""
	}
	agent := pick(func(v aggregate.AgentView) bool { return slices.Contains(probers, v.ID) })
	if agent == "" {
		agent = pick(func(v aggregate.AgentView) bool { return slices.Contains(v.Serves, m.ID) })
	}
	if agent == "" {
		return // nobody else can look: the quorum rule decides alone
	}
	hold := deadline + confirmGrace
	id := r.hub.confirm.start(m.ID, agent, now, now.Add(hold))
	data, _ := json.Marshal(confirmWire{Agent: agent, Member: m.ID, DeadlineMs: uint32(deadline / time.Millisecond)})
	wctx, cancel := context.WithTimeout(ctx, confirmWrite)
	defer cancel()
	if err := r.store.PutConfirm(wctx, "req", id, data, hold); err != nil {
		r.log.Warn("confirm_probe_dropped", "member", m.ID, "agent_id", agent, "reason", err.Error())
		return
	}
	r.log.Info("confirm_probe_requested", "member", m.ID, "agent_id", agent, "ejecting", m.Ejecting, "deadline_ms", deadline.Milliseconds())
}

// relayConfirms follows the confirmation keys until ctx ends: it sends
// the requests meant for this replica's agents and hands the results to
// this replica's confirmer (which knows them only if it asked).
func (r *Replica) relayConfirms(ctx context.Context) error {
	for m := range r.store.WatchConfirms(ctx) {
		now := r.clk.Now()
		live := map[uint64]bool{}
		for key, data := range m {
			kind, idText, _ := strings.Cut(key, "/")
			id, err := strconv.ParseUint(idText, 10, 64)
			var w confirmWire
			if err == nil {
				err = json.Unmarshal(data, &w)
			}
			if err != nil {
				r.log.Warn("confirm_key_unreadable", "key", key, "error", err.Error())
				continue
			}
			switch kind {
			case "req":
				live[id] = true
				r.relayProbe(id, w)
			case "res":
				if member, ok := r.hub.confirm.finish(id, w.Agent, w.OK, now); ok {
					r.log.Info("confirm_probe_result", "member", member, "agent_id", w.Agent, "ok", w.OK, "error", w.Error)
					r.hub.notify()
				}
			}
		}
		r.hub.confirm.forget(live)
	}
	return nil
}

// relayProbe sends request id to its agent if that agent is connected
// here and the probe was not sent yet.
func (r *Replica) relayProbe(id uint64, w confirmWire) {
	for _, c := range r.hub.agents() {
		if c.id != w.Agent || !r.hub.confirm.relay(id, c.id) {
			continue
		}
		msg := &hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_ConfirmProbe{ConfirmProbe: &hangarv1.ConfirmProbe{
			Id: id, Member: w.Member, DeadlineMs: w.DeadlineMs}}}
		if !c.enqueue(newControlMsg(msg, kindConfirm)) {
			r.log.Warn("confirm_probe_dropped", "member", w.Member, "agent_id", c.id, "reason", "queue full")
			return
		}
		r.log.Info("confirm_probe_sent", "member", w.Member, "agent_id", c.id, "relayed", true, "deadline_ms", w.DeadlineMs)
	}
}

// relayResult writes an agent's answer to a relayed request for the
// leader; answers to nothing this replica relayed are dropped.
func (s *agentService) relayResult(c *agentConn, res *hangarv1.ConfirmResult) {
	if s.store == nil || !s.hub.confirm.relayedTo(res.GetId(), c.id) {
		return
	}
	data, _ := json.Marshal(confirmWire{Agent: c.id, OK: res.GetOk(), Error: res.GetError()})
	ctx, cancel := context.WithTimeout(context.Background(), confirmWrite)
	defer cancel()
	if err := s.store.PutConfirm(ctx, "res", res.GetId(), data, confirmHold); err != nil {
		s.log.Warn("confirm_result_dropped", "agent_id", c.id, "error", err.Error())
		return
	}
	s.log.Info("confirm_probe_relayed", "agent_id", c.id, "ok", res.GetOk())
}

// relay records that request id goes to agent through this replica;
// false if it was already sent.
func (c *confirmer) relay(id uint64, agent string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, sent := c.relayed[id]; sent {
		return false
	}
	if c.relayed == nil {
		c.relayed = map[uint64]string{}
	}
	c.relayed[id] = agent
	return true
}

// relayedTo reports whether request id was relayed to agent, and forgets it.
func (c *confirmer) relayedTo(id uint64, agent string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.relayed[id]; ok && a == agent {
		c.relayed[id] = "" // answered: keep the id so the probe is not sent again
		return true
	}
	return false
}

// forget drops the relayed requests whose keys are gone.
func (c *confirmer) forget(live map[uint64]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.relayed {
		if !live[id] {
			delete(c.relayed, id)
		}
	}
}
