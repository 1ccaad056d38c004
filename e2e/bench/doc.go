// Package bench is hangar-bench: it starts two mcp-math upstreams and a
// hangar-agent whose priority group fronts them, then measures `tools/call
// add` round trips with the MCP Go SDK client (stateful Streamable HTTP) on
// four paths:
//
//	direct         straight to the primary mcp-math
//	reverse_proxy  through an httputil.ReverseProxy (its own process) to the same upstream
//	front_door     the agent's front-door tool "add" (routed to the group)
//	hangar_call    the agent's hangar_call tool, one call per batch
//
// For each path it reports sequential p50, p99 and mean over -n calls (one
// session, after a warm-up; the paths take turns in -rounds blocks so that
// background load hits them alike) and the throughput of -c concurrent
// sessions for -d. A proxy's "added latency" is its p50 minus the direct
// p50; the goal is front_door added ≤ 1.5 × reverse_proxy added.
//
// Then it drives -rate calls/s of "add" through the front door, kills the
// primary with SIGKILL after -before and keeps going for -after, and
// reports calls sent, failed (goal 0) and served per member. Then, on a
// fleet of its own each time, it drives -rate calls/s through hangar_call
// (2 s budget per call) of a read-only tool ("add") and of a tool not safe
// to repeat ("append"), freezes the primary with SIGSTOP after -before and
// keeps going for -after, and reports failed calls, the time until the
// backup served and the latency of the calls sent during the freeze. Last
// comes the agent's resident memory.
//
// The numbers are a report, not a verdict: nothing fails on a slow machine.
// The report is printed as a table and written as JSON to -json.
package bench
