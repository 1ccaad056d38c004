// Package cpbench is hangar-cpbench, the control plane's part of `make
// bench`: how fast one replica moves a fleet of agents off an ejected
// member, and what each connected agent costs it in memory.
//
// It runs one replica exactly as `hangar-controlplane serve` does
// (daemon.Run, embedded etcd with its production settings: fsync on, 100 ms
// heartbeat) in a child process: its own re-executed binary, so that the
// replica's heap and RSS are not mixed with the simulator's, and the
// numbers are those of the shipped code path (interceptors, logging
// included). The simulator then opens -agents real gRPC Connect streams
// over -conns shared client connections (HTTP/2 multiplexing); every
// simulated agent sends a Hello serving both members of the failover
// recipe's group and ACKs every snapshot at once.
//
// Each of -rounds rounds: one agent, the only caller of my-mcp, reports it
// ejected from my-mcp-group; the simulator notes when each agent ACKs the
// first snapshot without my-mcp in rotation, and reports the time from the
// report to the ACK of 50 %, 99 % and 100 % of the agents. Then the agent
// reports my-mcp healthy again and the restoration is timed alike. The
// median round (by its 99 % time) is compared with the goal: 99 % within
// 250 ms at 10,000 agents.
//
// Memory per agent is the replica's heap and goroutine stacks in use after
// a forced GC, and its RSS, after all agents connected minus before any did, divided by the
// number of agents; the goal is at most 50 KiB.
//
// Both processes share the machine's CPUs: the times include the
// simulator's own work. The numbers are a report, not a verdict: nothing
// fails on a slow machine. The report is printed as a table and written as
// JSON to -json.
package cpbench
