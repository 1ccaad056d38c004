// Package aggregate is the control plane's decision function (docs/design.md §4.2):
// from the fleet configuration and what every connected agent last reported,
// Compute decides which agents probe which member, which members are globally
// degraded, each group's global rotation, breaker and state.
//
// Compute is pure: no I/O, logging, goroutines or clock (the time is
// Input.Now). It does not modify its input, and its Output shares no slice or
// map with it, so it is safe to call concurrently. The Output depends only on
// the content of the Input, never on the order of Input.Agents or of map
// iteration: every slice is sorted by id, except GroupResult.Members (config
// order) and GroupResult.Rotation (priority ascending, then config order).
// Empty slices are nil.
//
// # Rules
//
// The members are the remote and subprocess servers of the fleet (and any id a
// group names). A group's health.probers and health.quorum left at zero mean
// the defaults, 2 and 0.5.
//
//   - Prober assignment. A member's candidates are the connected agents whose
//     Serves contains it. Probers picks n of them by rendezvous (highest random
//     weight) hashing, where n is the largest health.probers among the groups
//     containing the member (2 if it is in no group). Probe load on a member
//     therefore does not grow with the fleet, and an agent joining or leaving
//     moves only the assignments it wins or held. Output.Assignments inverts
//     this: every connected agent has an entry, possibly empty.
//
//   - Probe verdicts. A member is globally degraded (MemberResult.Reason
//     "probers") when a strict majority of its assigned probers that report a
//     verdict say Degraded: Votes.Degraded > Votes.Ready. A verdict is a
//     MemberView with Probed set and Health Ready or Degraded; Health Unknown
//     (the first probe has not finished) is silence, not a vote. If no assigned
//     prober reports a verdict (the probers were just reassigned), the verdicts
//     of every agent that probes the member count instead. If there is still
//     none, the member is not degraded: silence never ejects.
//
//   - Traffic quorum, per group and member. The member's callers are the
//     agents whose MemberView.LastCall is within CallWindow of Input.Now (a
//     call exactly CallWindow old still counts; a zero LastCall never does).
//     If strictly more than the group's health.quorum fraction of the callers
//     have the group in EjectedIn, the member is out of that group's global
//     rotation (Reason "traffic_quorum"). One agent with a bad network path
//     among several callers cannot eject a member for everyone; the only
//     caller can. No callers, no ejection.
//
//   - Evidence by where it comes from. A caller that has the member out
//     with the group in ServerEjectedIn (the member itself answered with
//     errors, which no network path causes) takes it out of the group's
//     global rotation alone (Reason "server_errors"). A caller that has it
//     out on path evidence (refused, timeouts, broken streams) takes it out
//     only with the quorum, but Input.Confirmed names the members whose
//     confirmation probe from another agent failed: those are out, as long
//     as the leader holds that result (Reason "confirmed").
//
//   - Drain. A member listed in Input.Drained[group] is out of that group's
//     rotation (Reason "drained"). When several reasons hold, Reason is the
//     first of drained, probers, server_errors, confirmed, traffic_quorum.
//
//   - Breaker. A group's breaker is globally open when strictly more than the
//     group's quorum of the agents whose GroupView.LastCall is within
//     CallWindow report Breaker Open (HalfOpen is not open).
//
//   - Rotation and state. A group's rotation is its members that are in
//     rotation, by priority ascending, then config order, whatever the
//     strategy; under strategy priority, ActiveMember is Rotation[0]. State is
//     "degraded" if the breaker is open, else "inactive" if the rotation is
//     empty, else "healthy" if it holds at least max(min_healthy, 1) members,
//     else "partial".
package aggregate
