package router

import (
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
)

// Observers fans every event out to each of obs, in order.
func Observers(obs ...Observer) Observer { return observers(obs) }

type observers []Observer

func (o observers) MemberState(member string, s health.State) {
	for _, x := range o {
		x.MemberState(member, s)
	}
}

func (o observers) Probe(member string, ok bool, d time.Duration) {
	for _, x := range o {
		x.Probe(member, ok, d)
	}
}

func (o observers) Attempt(group, member, tool string, class outcome.Class, d time.Duration) {
	for _, x := range o {
		x.Attempt(group, member, tool, class, d)
	}
}

func (o observers) Call(c CallRecord) {
	for _, x := range o {
		x.Call(c)
	}
}

func (o observers) Breaker(group string, s breaker.State) {
	for _, x := range o {
		x.Breaker(group, s)
	}
}

func (o observers) Rotation(group, member string, in bool) {
	for _, x := range o {
		x.Rotation(group, member, in)
	}
}

func (o observers) ActiveMember(group, member string) {
	for _, x := range o {
		x.ActiveMember(group, member)
	}
}

func (o observers) Failover(group, from, to string, class outcome.Class) {
	for _, x := range o {
		x.Failover(group, from, to, class)
	}
}

func (o observers) Failback(group, from, to string) {
	for _, x := range o {
		x.Failback(group, from, to)
	}
}
