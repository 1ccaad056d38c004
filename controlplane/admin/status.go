package admin

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	"github.com/hangarmesh/hangar/internal/latency"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// recentEvents is how many of a group's latest events GroupStatus carries.
const recentEvents = 5

// ListGroups describes every group of the stored fleet config, by id.
func (s *Server) ListGroups(ctx context.Context, _ *hangarv1.ListGroupsRequest) (*hangarv1.ListGroupsResponse, error) {
	v, err := s.load(ctx, true)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &hangarv1.ListGroupsResponse{SnapshotVersion: v.version}
	if v.fleet != nil {
		for _, id := range sortedKeys(v.fleet.Groups) {
			resp.Groups = append(resp.Groups, v.groupStatus(v.fleet.Groups[id]))
		}
	}
	return resp, nil
}

// GetGroupStatus describes one group: what hangarctl group status shows.
func (s *Server) GetGroupStatus(ctx context.Context, req *hangarv1.GetGroupStatusRequest) (*hangarv1.GroupStatus, error) {
	v, err := s.load(ctx, true)
	if err != nil {
		return nil, toStatus(err)
	}
	g, err := v.group(req.GetGroup())
	if err != nil {
		return nil, toStatus(err)
	}
	return v.groupStatus(g), nil
}

// decision is the routing decision on a group: the snapshot's, or the
// recomputed one while the snapshot does not hold the group.
type decision struct {
	state    string
	rotation []string
	drained  []string
	breaker  hangarv1.BreakerState
	active   string
}

func (v *view) decision(id string) decision {
	if gs := v.groupState(id); gs != nil {
		return decision{gs.GetState(), gs.GetRotation(), gs.GetDrained(), gs.GetBreaker(), gs.GetActiveMember()}
	}
	r := v.out.Groups[id]
	d := decision{state: r.State, rotation: r.Rotation, drained: r.Drained, active: r.ActiveMember}
	if r.BreakerOpen {
		d.breaker = hangarv1.BreakerState_BREAKER_STATE_OPEN
	}
	return d
}

func (v *view) groupStatus(g *fleetfile.Group) *hangarv1.GroupStatus {
	d := v.decision(g.ID)
	gs := &hangarv1.GroupStatus{
		Id: g.ID, Description: g.Description, Strategy: string(g.Strategy), State: d.state,
		MinHealthy: int32(g.MinHealthy), Breaker: v.breakerStatus(g, d), ActiveMember: d.active,
		SnapshotVersion: v.version, AgentsAcked: v.acked(), AgentsTotal: int32(len(v.agents)),
	}
	res := v.out.Groups[g.ID]
	for i, m := range g.Members {
		var gm aggregate.GroupMember
		if i < len(res.Members) {
			gm = res.Members[i] // Compute keeps config order
		}
		gs.Members = append(gs.Members, v.memberStatus(g, m, gm, d))
	}
	var evs []*hangarv1.Event
	for i := len(v.events) - 1; i >= 0 && len(evs) < recentEvents; i-- {
		if v.events[i].Group == g.ID {
			evs = append(evs, eventProto(v.events[i]))
		}
	}
	slices.Reverse(evs)
	gs.RecentEvents = evs
	return gs
}

// breakerStatus is the group breaker: the snapshot's state and the agents'
// votes. Agents do not report when their breaker opened, so half_opens_at
// is the fleet-wide opening (the group's latest circuit_opened event) plus
// reset_timeout_s, or now plus reset_timeout_s if that event is gone.
func (v *view) breakerStatus(g *fleetfile.Group, d decision) *hangarv1.BreakerStatus {
	res := v.out.Groups[g.ID]
	b := &hangarv1.BreakerStatus{State: d.breaker, OpenAgents: int32(res.OpenVotes), CallingAgents: int32(res.Callers)}
	for _, ar := range v.agents {
		for _, gr := range ar.GetReport().GetGroups() {
			if gr.GetGroup() == g.ID {
				b.ConsecutiveFailures = max(b.ConsecutiveFailures, gr.GetConsecutiveFailures())
			}
		}
	}
	if d.breaker == hangarv1.BreakerState_BREAKER_STATE_OPEN {
		opened := v.now
		for i := len(v.events) - 1; i >= 0; i-- {
			if e := v.events[i]; e.Group == g.ID && e.Kind == "circuit_opened" {
				opened = e.Time
				break
			}
		}
		b.HalfOpensAt = timestamppb.New(opened.Add(g.CircuitBreaker.ResetTimeout))
	}
	return b
}

func (v *view) memberStatus(g *fleetfile.Group, m fleetfile.Member, gm aggregate.GroupMember, d decision) *hangarv1.MemberStatus {
	mr := v.out.Members[m.ID]
	state, sreason := v.memberState(m.ID)
	ms := &hangarv1.MemberStatus{
		Id: m.ID, Priority: int32(m.Priority), Weight: int32(m.Weight), State: state,
		InRotation: slices.Contains(d.rotation, m.ID),
		Drained:    slices.Contains(v.drained[g.ID], m.ID),
		Probers:    mr.Probers, ProbesReady: int32(mr.Votes.Ready), ProbesDegraded: int32(mr.Votes.Degraded),
		Ejecting: gm.Ejecting, Callers: int32(gm.Callers),
	}
	// Why it is out, by the leader's precedence, from the decision itself.
	if !ms.InRotation {
		switch {
		case slices.Contains(d.drained, m.ID):
			ms.Reason = aggregate.ReasonDrained
		case sreason != "":
			ms.Reason = sreason
		case gm.Reason != "":
			ms.Reason = gm.Reason
		default:
			// Decided on evidence the recomputation does not hold (a
			// confirmation probe): the leader's event says which.
			ms.Reason = v.outReason(g.ID, m.ID)
		}
	}
	c := v.calls(m.ID)
	ms.OkPerSecond, ms.ErrorPerSecond = c.rates()
	ms.P50Seconds, ms.P99Seconds = latency.Quantile(0.5, c.buckets), latency.Quantile(0.99, c.buckets)
	return ms
}

// outReason is the reason of the latest member_out_of_rotation event of
// member in group ("out of global rotation: REASON (snapshot N)"), or
// traffic_quorum when there is none.
func (v *view) outReason(group, member string) string {
	for i := len(v.events) - 1; i >= 0; i-- {
		e := v.events[i]
		if e.Group != group || e.Server != member || e.Kind != "member_out_of_rotation" {
			continue
		}
		if r, ok := strings.CutPrefix(e.Message, "out of global rotation: "); ok {
			r, _, _ = strings.Cut(r, " (snapshot")
			return r
		}
	}
	return aggregate.ReasonTrafficQuorum
}

// memberState is the member's global state and why it is not ready: the
// snapshot's, or the recomputed one while the snapshot does not hold it.
func (v *view) memberState(id string) (hangarv1.MemberState, string) {
	if st := v.serverState(id); st != nil {
		return st.GetState(), st.GetReason()
	}
	if r := v.out.Members[id]; r.Degraded {
		return hangarv1.MemberState_MEMBER_STATE_DEGRADED, r.Reason
	}
	return hangarv1.MemberState_MEMBER_STATE_READY, ""
}

// ListServers describes every remote and subprocess server, by id.
func (s *Server) ListServers(ctx context.Context, _ *hangarv1.ListServersRequest) (*hangarv1.ListServersResponse, error) {
	v, err := s.load(ctx, false)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &hangarv1.ListServersResponse{}
	if v.fleet != nil {
		for _, id := range sortedKeys(v.fleet.Servers) {
			resp.Servers = append(resp.Servers, v.serverStatus(v.fleet.Servers[id]))
		}
	}
	return resp, nil
}

// GetServerStatus describes one server across the fleet.
func (s *Server) GetServerStatus(ctx context.Context, req *hangarv1.GetServerStatusRequest) (*hangarv1.ServerStatus, error) {
	v, err := s.load(ctx, false)
	if err != nil {
		return nil, toStatus(err)
	}
	srv, ok := v.fleet.Server(req.GetServer())
	if !ok {
		if v.fleet == nil {
			return nil, toStatus(notFoundf("no server %q: no fleet config is stored (apply one with hangarctl config apply)", req.GetServer()))
		}
		return nil, toStatus(notFoundf("no server %q in the fleet config (servers: %s)", req.GetServer(), list(sortedKeys(v.fleet.Servers))))
	}
	return v.serverStatus(srv), nil
}

func (v *view) serverStatus(srv *fleetfile.Server) *hangarv1.ServerStatus {
	mr := v.out.Members[srv.ID]
	state, reason := v.memberState(srv.ID)
	ss := &hangarv1.ServerStatus{
		Id: srv.ID, Mode: string(srv.Mode), Endpoint: endpoint(srv), State: state, Reason: reason,
		Probers: mr.Probers, ProbesReady: int32(mr.Votes.Ready), ProbesDegraded: int32(mr.Votes.Degraded),
	}
	for _, gid := range sortedKeys(v.fleet.Groups) {
		if slices.ContainsFunc(v.fleet.Groups[gid].Members, func(m fleetfile.Member) bool { return m.ID == srv.ID }) {
			ss.Groups = append(ss.Groups, gid)
		}
	}
	c := v.calls(srv.ID)
	ss.OkPerSecond, ss.ErrorPerSecond = c.rates()
	ss.P50Seconds, ss.P99Seconds = latency.Quantile(0.5, c.buckets), latency.Quantile(0.99, c.buckets)
	if len(c.byClass) > 0 {
		ss.Calls = c.byClass
	}
	return ss
}

// endpoint is where a server is reached: its URL, or the first word of a
// subprocess' command (its arguments may hold secrets).
func endpoint(srv *fleetfile.Server) string {
	if srv.Mode == fleetfile.ModeSubprocess && len(srv.Command) > 0 {
		return srv.Command[0]
	}
	return srv.Endpoint
}

// calls merges every agent's last minute of calls on a member.
func (v *view) calls(member string) minute {
	c := minute{byClass: map[string]uint64{}}
	for _, ar := range v.agents {
		for _, m := range ar.GetMinute() {
			if m.GetMember() != member {
				continue
			}
			for class, n := range m.GetCalls() {
				c.byClass[class] += n
			}
			for i, n := range m.GetLatencyBuckets() {
				for len(c.buckets) <= i {
					c.buckets = append(c.buckets, 0)
				}
				c.buckets[i] += n
			}
		}
	}
	return c
}

// rateWindow is the span the agents' minute counters cover.
const rateWindow = time.Minute
