// Package demo is `make demo`: Hangar's failover shown end to end with real
// processes, in under a minute.
//
// It starts two mcp-math upstreams (my-mcp and my-mcp-backup) and a
// hangar-agent with the seed's failover recipe, sends steady traffic to the
// group through the agent's hangar_call tool, kills the primary with SIGKILL,
// restarts it, and prints what happens: the calls and who served them, the
// agent's failover log lines and the group's status. It ends with a summary
// and fails (Run returns an error) if any call failed or failover or
// failback did not happen, so the demo doubles as a smoke test.
//
// [Run] is the whole hangar-demo command; e2e/cmd/hangar-demo is its main.
package demo
