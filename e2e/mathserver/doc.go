// Package mathserver is mcp-math, the MCP server that Hangar's end-to-end
// tests and demo use as an upstream.
//
// It serves a few arithmetic tools (add, subtract, multiply, divide, power),
// whoami (the server's name, so a test sees which member answered) and a
// non-idempotent append, over Streamable HTTP at /mcp or over stdio. Faults
// can be injected at start (flags) and changed at run time through an admin
// HTTP API (/admin/faults, /admin/stats, /admin/reset) or the Go API:
// protocol errors (JSON-RPC -32603), tool errors (isError results), added
// latency, calls that hang while tools/list keeps answering, and a
// tools/list outage.
//
// [Run] is the whole mcp-math command; [New] builds a server for in-process
// tests and [AdminClient] drives a running one from tests in other packages.
package mathserver
