// Package server is one control-plane replica (docs/design.md §4): what a
// hangar-controlplane process runs besides its command line and its admin
// API. A Replica has three responsibilities, in these files:
//
//   - Agent streams and fan-out: agentsvc.go serves AgentService.Connect
//     (Hello, admission, one receiving goroutine per stream), duplicate.go
//     refuses a second process with the same agent id, hub.go holds the
//     connected agents and sends each one its snapshots and probe
//     assignments through one sender with a bounded queue (a slow agent is
//     disconnected, never waited on), view.go turns a stored snapshot into
//     the per-agent messages, each encoded once and shared.
//   - Report intake: the agents' reports and heartbeats are kept in memory
//     (minute.go sums their calls over the last minute for hangarctl), and
//     replica.go publishes this replica's summary under a leased etcd key
//     (reports/<replica>) on change, so the leader hears agents connected
//     anywhere; identity.go says which agents count (a LOCAL agent runs a
//     fleet file of its own and never does).
//   - Leader election and decisions: replica.go holds one etcd session
//     after another (readiness.go: /readyz) and campaigns; leader.go, on the
//     leader only, merges every replica's reports with the stored fleet file,
//     drains and breaker resets, runs aggregate.Compute and writes a snapshot
//     when the decision changes; confirm.go and confirmrelay.go run the
//     confirmation probes that check one agent's path evidence, across
//     replicas through etcd when the chosen agent is connected elsewhere.
//
// metrics.go holds the hangar_controlplane_* metrics. Decisions are pure
// (package aggregate); etcd is reached only through package store; the
// planes meet only at proto/ and internal/fleetfile.
package server
