// Package admin is the control plane's AdminService (docs/design.md §4.4): what
// hangarctl shows and steers. Every replica serves it.
//
// # Where the answers come from
//
// Reads combine three sources, each read afresh on every call:
//
//   - the stored fleet config (etcd): which groups, servers and members
//     exist, their strategy, priorities and weights;
//   - the routing snapshot (etcd): the decision agents run — a group's
//     state, rotation, active member and breaker, a server's state;
//   - every connected agent's latest report (server.Replica.Agents): the
//     details behind the decision, recomputed with aggregate.Compute from
//     the same inputs the leader uses (probers and their verdicts, callers,
//     agents ejecting a member, agents with the breaker open), and the last
//     minute of call counters and latency histograms.
//
// A group the snapshot does not hold yet (a config applied a moment ago)
// is described from the recomputation alone. The drained flag is the
// operator's intent as stored, so it shows at once after DrainMember; the
// rotation follows with the next snapshot.
//
// Rates are the last minute's counts divided by 60 s, summed over agents;
// an agent connected for less than a minute is under-counted until it has
// been up for one. ok counts outcome class "ok"; errors count the classes
// that count against a member (connect_error, timeout, transport_error,
// server_error); caller_error and tool_error are in neither (they are in
// ServerStatus.calls). Quantiles interpolate linearly inside the merged
// latency buckets, as Prometheus' histogram_quantile does.
//
// # Writes
//
// ApplyConfig validates with the data plane's parser and stores the file;
// DrainMember, UndrainMember and ResetBreaker check the names against the
// stored fleet config and write the operator's intent to etcd, and the
// leader turns it into the next snapshot. Each write that changes something
// appends an event (config_applied, member_drained, member_undrained,
// breaker_reset).
//
// # Authorization
//
// Authorizer is a pair of gRPC interceptors giving each caller read-only or
// admin rights from a bearer token or a verified client certificate, and
// refusing mutating calls to read-only callers.
//
// Errors are mapped to gRPC status codes in one place, toStatus.
package admin
