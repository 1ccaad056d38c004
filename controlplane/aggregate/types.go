package aggregate

import (
	"strconv"
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// CallWindow is how recent an agent's last call must be for the agent to
// count as a caller of a member or a group.
const CallWindow = 10 * time.Second

// Reasons a member is degraded or out of a group's rotation.
const (
	ReasonDrained       = "drained"
	ReasonProbers       = "probers"
	ReasonTrafficQuorum = "traffic_quorum"
	// ReasonServerErrors: an agent that called the member ejected it on
	// server evidence (the member answered with errors).
	ReasonServerErrors = "server_errors"
	// ReasonConfirmed: an agent ejected it on path evidence and a probe
	// from another vantage point confirmed it is down.
	ReasonConfirmed = "confirmed"
)

// Group states.
const (
	StateHealthy  = "healthy"
	StatePartial  = "partial"
	StateInactive = "inactive"
	StateDegraded = "degraded"
)

// Health is an agent's active-probe verdict on a member. The zero value,
// Unknown, is no verdict yet.
type Health int

// The probe verdicts.
const (
	Unknown Health = iota
	Ready
	Degraded
)

func (h Health) String() string {
	switch h {
	case Unknown:
		return "unknown"
	case Ready:
		return "ready"
	case Degraded:
		return "degraded"
	}
	return "Health(" + strconv.Itoa(int(h)) + ")"
}

// Breaker is the state of an agent's local group circuit breaker as its
// reports carry it: the contract's enum (agent.proto), not a copy. The zero
// value is Closed.
type Breaker = hangarv1.BreakerState

// The breaker states.
const (
	Closed   = hangarv1.BreakerState_BREAKER_STATE_CLOSED
	Open     = hangarv1.BreakerState_BREAKER_STATE_OPEN
	HalfOpen = hangarv1.BreakerState_BREAKER_STATE_HALF_OPEN
)

// AgentView is what one connected agent last reported. Agent ids are
// expected to be unique; a missing map entry means the agent reported
// nothing about that member or group.
type AgentView struct {
	ID      string
	Serves  []string              // member ids this agent can call
	Members map[string]MemberView // by member id
	Groups  map[string]GroupView  // by group id
}

// MemberView is one agent's view of one member.
type MemberView struct {
	Health    Health   // the agent's probe verdict (meaningful only if Probed)
	Probed    bool     // the agent probes this member now
	EjectedIn []string // groups whose local rotation has the member out on this agent
	// ServerEjectedIn lists the groups of EjectedIn where the ejection was
	// on server evidence (the member itself answered with errors).
	ServerEjectedIn []string
	LastCall        time.Time // last call this agent sent the member (zero: never)
}

// GroupView is one agent's view of one group.
type GroupView struct {
	Breaker  Breaker
	LastCall time.Time // last call this agent sent the group (zero: never)
}

// Input is everything Compute decides from.
type Input struct {
	Fleet   *fleetfile.Fleet    // nil: no members or groups
	Agents  []AgentView         // connected agents only, in any order
	Drained map[string][]string // group id → members an operator drained
	// Confirmed names the members whose confirmation probe (another
	// agent's immediate probe after a path-evidence ejection) failed.
	Confirmed map[string]bool
	Now       time.Time
}

// Votes counts the probe verdicts that decided a member's health.
type Votes struct{ Degraded, Ready int }

// MemberResult is the global health of one member.
type MemberResult struct {
	ID       string
	Degraded bool
	// Reason is "" or ReasonProbers. Ejection by traffic is per group: see
	// GroupMember.
	Reason  string
	Probers []string // agents assigned to probe it, sorted; nil if none serves it
	Votes   Votes    // the verdicts counted (assigned probers, or the fallback)
}

// GroupMember is one member as seen from one group.
type GroupMember struct {
	ID               string
	Priority, Weight int
	InRotation       bool
	// Reason says why the member is out of rotation: ReasonDrained,
	// ReasonProbers, ReasonServerErrors, ReasonConfirmed or
	// ReasonTrafficQuorum, in that precedence; "" if in.
	Reason   string
	Callers  int      // agents that called the member within CallWindow
	Ejecting []string // of those, the agents that have it out of this group's local rotation (sorted)
	// ServerErrors lists the agents of Ejecting whose ejection was on
	// server evidence (sorted).
	ServerErrors []string
	// Confirmed is true when a confirmation probe of the member failed
	// (within the hold the leader keeps it for).
	Confirmed bool
}

// GroupResult is the global decision on one group.
type GroupResult struct {
	ID    string
	State string // StateHealthy, StatePartial, StateInactive or StateDegraded
	// Rotation lists the members in global rotation: priority ascending,
	// then config order.
	Rotation    []string
	Drained     []string // members of the group an operator drained (sorted)
	BreakerOpen bool
	// OpenVotes and Callers count the agents that called the group within
	// CallWindow with their breaker Open, and at all.
	OpenVotes, Callers int
	ActiveMember       string        // strategy priority only: Rotation[0]; "" otherwise or if none
	Members            []GroupMember // config order
}

// Output is Compute's decision.
type Output struct {
	Members map[string]MemberResult // by member id
	Groups  map[string]GroupResult  // by group id
	// Assignments maps each connected agent to the members it probes
	// (sorted); every connected agent has an entry, nil if it probes none.
	Assignments map[string][]string
}
