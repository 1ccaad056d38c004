// Package peers is hangar-peers (make bench-peers): Hangar's agent side by
// side with the tools its users would otherwise put in front of an MCP
// server, in one run, with the same upstreams, the same client and the
// same load.
//
// Upstream: @modelcontextprotocol/server-everything (e2e/thirdparty), a
// primary and a backup over Streamable HTTP; the stdio bridges spawn it
// over stdio themselves. Client: the MCP Go SDK, tools/call of its
// read-only tool get-sum. Peers (each skipped, with the reason printed,
// when it is not installed or cannot serve a first call):
//
//	hangar             hangar-agent, front door of a priority pair group
//	nginx              a plain HTTP reverse proxy (the floor), backup server configured
//	civic-passthrough  @civic/passthrough-mcp-server: Streamable HTTP in front and behind, one target
//	mcp-hub            HTTP+SSE (2024-11-05) in front, Streamable HTTP behind, tools prefixed
//	mcp-proxy          Streamable HTTP in front of one shared stdio child
//	supergateway       Streamable HTTP (stateful) in front of one stdio child per session
//
// For direct and each peer it measures sequential p50 and p99 over -n
// calls on one session (paths take turns in -rounds blocks), and calls/s
// of -c sessions flat out for -d; a peer's added latency is its
// percentile minus direct's. Then, on fresh upstreams and a fresh peer
// each time, -rate calls/s on -sessions sessions, each call in its own
// goroutine with -budget, while the primary is killed (SIGKILL) and, in a
// second run, frozen (SIGSTOP) after -before, for -after more: failed
// calls are those that erred or got no answer within the budget. A
// session whose call failed is opened again for its next call. For the
// stdio bridges "the primary" is every server-everything child they
// spawned. The same load goes once straight to server-everything with no
// fault: its failures are what the machine's own load costs. Last, the
// resident memory of each peer's processes (nginx's
// master and worker; not a bridge's stdio children) after the saturated
// run.
//
// e2e/peers/install.sh installs the peers: nginx from Debian when
// missing, the npm packages at the versions pinned here. The numbers are
// a report, not a verdict: nothing fails on a slow machine. The report is
// printed as a markdown table with the load average, and written as JSON
// to -json.
package peers
