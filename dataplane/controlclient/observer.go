package controlclient

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/latency"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Observer is the router.Observer that feeds a Client's reports: it counts
// attempts per member by outcome class and duration for heartbeats, and
// notes member state, breaker and rotation changes to send an
// edge-triggered report at once. It never blocks. Attempt is on the call
// path: it takes no lock once a member has its counters. It exists before
// the Client (Options.Observer), so the router that reports to it can be
// built first and the Client handed the agent that runs that router.
type Observer struct {
	changed chan struct{} // capacity 1: a state change is waiting to be reported
	members sync.Map      // member id → *counters
}

// counters are one member's attempts in the current heartbeat interval.
type counters struct {
	calls   []atomic.Uint64 // by index in outcome.Classes
	buckets []atomic.Uint64 // by index in latency.Bounds
	last    atomic.Int64    // unix ns of the last attempt
}

// callerGap is how long a member may go without attempts before the next
// one is reported at once: the control plane counts an agent as a caller
// for 10 s after its last reported call, and a new caller must count in
// the quorum before its first heartbeat.
const callerGap = 5 * time.Second

// NewObserver returns an Observer for Options.Observer.
func NewObserver() *Observer { return &Observer{changed: make(chan struct{}, 1)} }

var _ router.Observer = (*Observer)(nil)

// note records that a local state changed, without blocking.
func (o *Observer) note() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *Observer) MemberState(string, health.State) { o.note() }
func (o *Observer) Breaker(string, breaker.State)    { o.note() }
func (o *Observer) Rotation(string, string, bool)    { o.note() }

func (o *Observer) Probe(string, bool, time.Duration)              {}
func (o *Observer) Call(router.CallRecord)                         {}
func (o *Observer) ActiveMember(string, string)                    {}
func (o *Observer) Failover(string, string, string, outcome.Class) {}
func (o *Observer) Failback(string, string, string)                {}

// Attempt counts one attempt on member by class and duration.
func (o *Observer) Attempt(_, member, _ string, class outcome.Class, d time.Duration) {
	i := slices.Index(outcome.Classes, class)
	if member == "" || i < 0 {
		return
	}
	v, ok := o.members.Load(member)
	if !ok {
		v, _ = o.members.LoadOrStore(member, &counters{
			calls:   make([]atomic.Uint64, len(outcome.Classes)),
			buckets: make([]atomic.Uint64, len(latency.Bounds)),
		})
	}
	ctr := v.(*counters)
	ctr.calls[i].Add(1)
	ctr.buckets[latency.Bucket(d)].Add(1)
	now := time.Now().UnixNano()
	if prev := ctr.last.Swap(now); now-prev > int64(callerGap) {
		o.note() // a new caller of this member: tell the control plane now
	}
}

// take returns member's counters since the last take and resets them: calls
// holds only classes with attempts, buckets is nil if there were none.
func (o *Observer) take(member string) (calls map[string]uint64, buckets []uint64) {
	v, ok := o.members.Load(member)
	if !ok {
		return nil, nil
	}
	ctr := v.(*counters)
	for i := range ctr.calls {
		if n := ctr.calls[i].Swap(0); n > 0 {
			if calls == nil {
				calls = map[string]uint64{}
			}
			calls[string(outcome.Classes[i])] = n
		}
	}
	if calls == nil {
		return nil, nil
	}
	buckets = make([]uint64, len(ctr.buckets))
	for i := range ctr.buckets {
		buckets[i] = ctr.buckets[i].Swap(0)
	}
	return calls, buckets
}

// reset drops every counter, at the start of a stream: the first heartbeat
// covers the stream's first interval, not the time without a control plane.
func (o *Observer) reset() { o.members.Clear() }

// report builds a Report of the agent's local view. A heartbeat also takes
// the interval's counters of every member in the view.
func (c *Client) report(seq uint64, heartbeat bool) *hangarv1.Report {
	members, groups := c.agent.LocalView()
	r := &hangarv1.Report{Seq: seq, At: timestamppb.New(c.clock.Now()), Heartbeat: heartbeat}
	for _, m := range members {
		mr := &hangarv1.MemberReport{
			Member:              m.ID,
			State:               hangarv1.MemberState(m.State),
			Probed:              m.Probed,
			EjectedIn:           m.EjectedIn,
			ServerEjectedIn:     m.ServerEjectedIn,
			ConsecutiveFailures: uint32(max(m.ConsecutiveFailures, 0)),
			LastCall:            timestamp(m.LastCall),
		}
		if heartbeat {
			mr.Calls, mr.LatencyBuckets = c.obs.take(m.ID)
		}
		r.Members = append(r.Members, mr)
	}
	for _, g := range groups {
		r.Groups = append(r.Groups, &hangarv1.GroupReport{
			Group:               g.ID,
			Breaker:             breakerState(g.Breaker),
			ConsecutiveFailures: uint32(max(g.ConsecutiveFailures, 0)),
			LastCall:            timestamp(g.LastCall),
		})
	}
	return r
}

func breakerState(s breaker.State) hangarv1.BreakerState {
	switch s {
	case breaker.Open:
		return hangarv1.BreakerState_BREAKER_STATE_OPEN
	case breaker.HalfOpen:
		return hangarv1.BreakerState_BREAKER_STATE_HALF_OPEN
	}
	return hangarv1.BreakerState_BREAKER_STATE_CLOSED
}

// timestamp converts t, with nil for the zero time ("never").
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
