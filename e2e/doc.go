// Package e2e holds the end-to-end tests: real hangar-agent,
// hangar-controlplane and hangarctl processes (built once per run, started
// by package e2e/proc) on loopback, with real MCP upstreams (mcp-math from
// e2e/mathserver, and the third-party npm servers of e2e/thirdparty), real
// etcd, and faults injected by e2e/faultproxy. The tests assert what a user
// would notice: calls answered, failovers without a failed call, logs and
// exit codes. They are skipped under -short (make test-unit).
package e2e
