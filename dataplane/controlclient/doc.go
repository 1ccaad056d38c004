// Package controlclient is the agent's side of the control-plane connection
// (docs/design.md §4.1, §4.2, §3.5).
//
// A Client holds one AgentService.Connect stream to one control-plane
// replica at a time. It says Hello, applies the Snapshots and Assignments
// the replica pushes (ACKing or NACKing each snapshot), and reports the
// agent's local view: at once when a member's health, a member's rotation
// or a group's breaker changes (edge-triggered, bursts coalesced over
// 10 ms), and every heartbeat with the interval's call counters by outcome
// class and a latency histogram per member.
//
// Static stability: every accepted snapshot is written to the state
// directory (temporary file, fsync, rename; a SHA-256 checksum in a small
// header; the previous good snapshot is kept beside it) so a restarted
// agent can boot from it with LoadState while no replica answers, falling
// back to the previous snapshot when the last one is damaged. When the stream breaks or no replica answers, the Client
// calls Agent.Detach once so the agent probes every member and decides
// rotation locally, then retries the endpoints in turn with capped,
// jittered exponential backoff.
//
// Each attempt dials one endpoint with its own grpc.ClientConn, closed when
// the attempt ends. The Client, not gRPC, then decides which replica to try
// next and when: gRPC's own reconnect backoff (up to 120 s) never stacks on
// ours, Status and the logs name the replica in use, and a broken stream
// always moves the agent to the next replica.
package controlclient
