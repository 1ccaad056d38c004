package servertest

import (
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Called is a member the agent sent a call just now, out of its local
// rotation in the groups listed.
func Called(member string, ejectedIn ...string) *hangarv1.MemberReport {
	return &hangarv1.MemberReport{Member: member, State: hangarv1.MemberState_MEMBER_STATE_READY,
		EjectedIn: ejectedIn, LastCall: timestamppb.Now()}
}

// Probed is a member the agent probes, with its verdict.
func Probed(member string, state hangarv1.MemberState) *hangarv1.MemberReport {
	return &hangarv1.MemberReport{Member: member, State: state, Probed: true}
}

// Member is one member as an agent reports it: probed and READY, called
// just now if calls is non-nil or it is out of local rotation somewhere.
func Member(id string, calls map[string]uint64, buckets []uint64, ejectedIn ...string) *hangarv1.MemberReport {
	m := &hangarv1.MemberReport{Member: id, State: hangarv1.MemberState_MEMBER_STATE_READY, Probed: true,
		EjectedIn: ejectedIn, Calls: calls, LatencyBuckets: buckets}
	if calls != nil || len(ejectedIn) > 0 {
		m.LastCall = timestamppb.Now()
	}
	return m
}

// GroupReport is the agent's breaker on the failover Group, called just now.
func GroupReport(b hangarv1.BreakerState, failures uint32) []*hangarv1.GroupReport {
	return []*hangarv1.GroupReport{{Group: Group, Breaker: b, ConsecutiveFailures: failures, LastCall: timestamppb.Now()}}
}

// GroupState returns group id's state in snap, nil if absent.
func GroupState(snap *hangarv1.Snapshot, id string) *hangarv1.GroupState {
	for _, g := range snap.GetGroups() {
		if g.GetId() == id {
			return g
		}
	}
	return nil
}

// Rotation is a predicate: the failover Group's rotation is exactly want.
func Rotation(want ...string) func(*hangarv1.Snapshot) bool {
	return func(s *hangarv1.Snapshot) bool {
		g := GroupState(s, Group)
		return g != nil && slices.Equal(g.GetRotation(), want)
	}
}
