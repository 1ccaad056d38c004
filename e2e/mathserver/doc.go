// Package mathserver is mcp-math, the MCP server that Hangar's end-to-end
// tests and demo use as an upstream.
//
// It serves add, subtract, multiply, divide and power (numbers a and b; the
// result as text and as structured content {"result": n}; b = 0 in divide
// is an isError result), whoami (the server's name, so a test sees which
// member answered) and append (text; returns the list's new length). All
// but append are annotated readOnlyHint and idempotentHint; append is
// neither, so tests can check that it is never retried.
//
// # Command line
//
//	--transport http|stdio  (env MCP_TRANSPORT, default http)
//	--host, --port          (env MCP_HOST, MCP_PORT, default 127.0.0.1:8080; port 0 picks one)
//	--name                  (env MCP_NAME, default mcp-math)
//	--stateless             serve the SDK's stateless Streamable HTTP mode
//	--admin-addr            stdio mode: also serve the admin API on this host:port
//	--fail-tools add,divide ("*": every tool), --fail-rate 0..1 (default 1),
//	--fail-mode rpc|tool, --latency 50ms, --hang, --fail-list, --seed N
//
// Once serving, it prints one line to stderr:
// "mcp-math listening name=NAME addr=HOST:PORT", or in stdio mode
// "mcp-math ready name=NAME transport=stdio[ admin=HOST:PORT]".
//
// # HTTP API
//
// MCP is served at /mcp. The admin API, on the same server, is:
// GET /admin/faults (the Faults in force, as JSON), PUT /admin/faults
// (replace them; a bad body is a 400 {"error": "..."} and changes nothing),
// GET /admin/stats (Stats) and POST /admin/reset (zero the counters).
//
// [Run] is the whole mcp-math command; [New] builds a server for in-process
// tests and [AdminClient] drives a running one from tests in other packages.
package mathserver
