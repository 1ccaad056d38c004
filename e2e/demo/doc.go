// Package demo is `make demo`: the whole of Hangar shown end to end with
// real processes, in well under a minute.
//
// It starts two mcp-math upstreams (my-mcp and my-mcp-backup), a
// hangar-controlplane on embedded etcd serving the seed's failover recipe,
// and two hangar-agents (A and B) managed by it, with no fleet file of
// their own. It sends steady traffic to the group through each agent's
// hangar_call tool (A busy, B light), kills the primary with SIGKILL,
// restarts it, and prints what happens: the calls and who served them, A's
// local failover, the control plane's decision and the snapshot B applies,
// the failback on both agents. It runs the real hangarctl against the
// control plane, as an operator would, and prints its group status table
// before the kill, after the control plane's decision and after the
// failback, and its recent events at the end; a hangarctl that exits
// non-zero fails the demo. It ends with a summary and fails (Run
// returns an error) if any call failed, failover or failback did not
// happen, or an agent sent a call to the primary while its snapshot
// excluded it, so the demo doubles as a smoke test.
//
// [Run] is the whole hangar-demo command; e2e/cmd/hangar-demo is its main.
package demo
