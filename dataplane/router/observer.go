package router

import (
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
)

// Observer receives every state change and call outcome of a Router, for
// metrics and, later, reports to the control plane. Methods are called
// without the router's locks held and must not block.
type Observer interface {
	// MemberState reports a member's health state.
	MemberState(member string, s health.State)
	// Probe reports one active health check.
	Probe(member string, ok bool, d time.Duration)
	// Attempt reports one attempt of a call on a member; group is "" for a
	// call addressed to the member directly.
	Attempt(group, member, tool string, class outcome.Class, d time.Duration)
	// Call reports a finished call.
	Call(c CallRecord)
	// Breaker reports a group breaker's state.
	Breaker(group string, s breaker.State)
	// Rotation reports whether a member is in a group's local rotation.
	Rotation(group, member string, in bool)
	// ActiveMember reports the member a priority group serves from.
	ActiveMember(group, member string)
	// Failover reports a call moved from one member to the next.
	Failover(group, from, to string, class outcome.Class)
	// Failback reports a group returned to a higher-priority member.
	Failback(group, from, to string)
}

type nopObserver struct{}

func (nopObserver) MemberState(string, health.State)                             {}
func (nopObserver) Probe(string, bool, time.Duration)                            {}
func (nopObserver) Attempt(string, string, string, outcome.Class, time.Duration) {}
func (nopObserver) Call(CallRecord)                                              {}
func (nopObserver) Breaker(string, breaker.State)                                {}
func (nopObserver) Rotation(string, string, bool)                                {}
func (nopObserver) ActiveMember(string, string)                                  {}
func (nopObserver) Failover(string, string, string, outcome.Class)               {}
func (nopObserver) Failback(string, string, string)                              {}

// CallRecord describes a finished call on a server or a group.
type CallRecord struct {
	Target   string // the server or group the caller named
	Group    string // the group, "" for a call addressed to a server directly
	Member   string // the member that answered, or the last one tried; "" if none was
	Tool     string
	Class    outcome.Class
	ErrType  ErrorType // "" for a call that succeeded
	Attempts int
	Duration time.Duration
	Session  string // CallOptions.Session
}
