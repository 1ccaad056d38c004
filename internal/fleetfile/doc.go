// Package fleetfile parses the fleet file: the servers and groups Hangar
// routes MCP tool calls to. The format is MCP Hangar's config.yaml
// (github.com/mcp-hangar/mcp-hangar): its cookbook recipes 02-05, kept in
// testdata/recipes, load unchanged, and every other key MCP Hangar documents
// is either read, deliberately ignored, or refused with the reason (below).
//
// Parse checks the whole file and returns every problem at once, as
// Errors sorted by line ("config.yaml:12: mcp_servers.g.members[1].id:
// unknown server "my-mcpp" (did you mean "my-mcp"?)"). A Fleet is only
// returned for a file without problems, so a bad file never replaces a good
// configuration. The fleet file is the contract between the planes: the
// control plane stores and sends it, each agent runs it, and both parse it
// here (ParseAs); neither plane imports the other.
//
// # Example
//
//	mcp_servers:
//	  my-mcp:
//	    mode: remote
//	    endpoint: http://localhost:8080/mcp
//	    health_check_interval_s: 30
//	    http: {connect_timeout: 10.0, read_timeout: 30.0}
//	  my-mcp-backup: {mode: remote, endpoint: "${BACKUP_URL:-http://localhost:8081/mcp}"}
//	  my-mcp-group:
//	    mode: group
//	    strategy: priority
//	    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
//	    members: [{id: my-mcp, priority: 1}, {id: my-mcp-backup, priority: 2}]
//
// # Rules
//
// The file is one YAML document whose top level is a map. Keys are checked
// strictly in every section Hangar reads: an unknown key is an error that
// suggests the nearest valid key; a duplicate key is an error; values must
// have the right YAML type (write 30, not "30"); numbers are range checked.
// YAML anchors, aliases and merge keys (<<: *base) work. Entries may come
// in any order: a group may name members defined after it. Server ids keep
// their case and are 1-64 letters, digits, '_', '-' and '.', starting with a
// letter or digit. Durations are in seconds, fractions allowed, at most
// 86400. Files over 4 MiB are refused.
//
// # Variables
//
// ${VAR} and ${VAR:-default} are expanded in string values after YAML
// parsing, as MCP Hangar does: a set variable wins even when empty, then the
// default; an unset variable without a default is an error naming the line
// and the variable (write ${VAR:-} to allow empty). Anything else with a '$'
// ($VAR, ${1}, a lone $) is kept as written; there is no escape, and a
// default is not expanded again. Keys, non-string values and the ignored
// sections below are never expanded.
//
// Whose environment: the agent's. The file is stored in etcd and carried
// in snapshots as written; each agent expands it against its own
// environment whenever it installs it (its --config, or a snapshot's
// file), so agents can differ where a variable says so: one agent can
// reach a server through another address, or with its own credentials,
// and a secret needs to be set on the agents only. An agent that lacks a
// variable without a default refuses the file (a NACK naming the line and
// the variable) and keeps the one it runs. The control plane (hangarctl
// config apply, a replica's --fleet-config, the leader) reads no
// environment: a reference takes its default, and one without a default
// is left for the agents to fill and check. So write what the control
// plane decides on (ids, modes, strategies, group settings) literally or
// with a default that every agent shares; use variables for what reaches
// a server (endpoint, http.headers, auth, tls, command, env). ParseAs is
// the one entry point that applies this rule.
//
// # Top level
//
//	mcp_servers   map of id → entry (required, at least one entry)
//	providers     the old name of mcp_servers (not both)
//	health_check  {enabled, interval_s}: interval_s is the default
//	              health_check_interval_s of every server that sets none;
//	              enabled: false is an error (Hangar always probes)
//	health        another name of health_check (not both)
//	tool_access   {mode}: default tool_access.mode of every group; an error
//	              when no group takes it (it would have no effect)
//
// MCP Hangar's process sections are accepted and ignored (Hangar takes
// process settings from flags, HANGAR_* variables and its settings file):
// config_reload, coordination, event_store, execution, hot_loading, http,
// logging, observability, persistence, rate_limit, relay_tasks_enabled,
// resource_links, retry, startup_checks, truncation.
//
// Sections for features Hangar does not have are errors, because ignoring
// them would drop a control the user relies on: approvals, auth, discovery
// (these three are accepted when they only say enabled: false), headers,
// interceptors, ui_resources.
//
// # Entries
//
// Every entry has mode (remote, subprocess or group; an entry without a
// mode is a subprocess, as in MCP Hangar) and an optional description.
// MCP Hangar's docker mode (also container, podman) is an error: run the
// container yourself and point a remote entry at it, or start it through
// a subprocess command.
//
// Keys of remote and subprocess servers:
//
//	health_check_interval_s   active probe period (30; the seed's default is 60)
//	max_consecutive_failures  failed probes that make the server DEGRADED (3; 1..100)
//	http.connect_timeout      seconds (10)
//	http.read_timeout         seconds (30)
//	max_concurrency           calls in flight per agent (agent default; >= 1)
//	idle_ttl_s                stop an idle subprocess after this long (0: never;
//	                          accepted and unused for remote servers)
//	transport                 streamable-http for remote, stdio for subprocess;
//	                          sse is an error (Hangar speaks Streamable HTTP)
//
// Remote servers (mode: remote):
//
//	endpoint                  http or https URL of the Streamable HTTP endpoint (required)
//	http.headers              extra request headers (map; Host, Content-Type, Accept,
//	                          Mcp-Session-Id and the like are Hangar's own)
//	http.max_retries          checked (0..100) and unused: Hangar fails over instead
//	http.retry_backoff_factor checked (>= 0) and unused
//	auth.type                 none, api_key, bearer or basic; becomes a header
//	auth.api_key              api_key: the key (required)
//	auth.api_key_header       api_key: the header (X-API-Key)
//	auth.bearer_token         bearer: Authorization: Bearer <token> (required)
//	auth.username, password   basic: Authorization: Basic ... (required)
//	tls.verify_ssl            check the server certificate (true)
//	tls.ca_cert_path          PEM file of the CAs to trust instead of the system pool
//
// Subprocess servers (mode: subprocess):
//
//	command                   program and arguments, a non-empty list of strings (required)
//	env                       extra environment (map; numbers and booleans taken as written)
//
// Groups (mode: group):
//
//	strategy                  priority, round_robin (default), weighted_round_robin,
//	                          least_connections, random
//	min_healthy               members in rotation for the group to be healthy
//	                          (1; 0..number of members)
//	members                   non-empty list of {id, priority (1; 1..100),
//	                          weight (1; 1..100)}; each id names a remote or
//	                          subprocess server, at most once per group
//	health.unhealthy_threshold counted failures that take a member out of local rotation (2; >= 1)
//	health.healthy_threshold  successes that bring it back (1; >= 1)
//	health.quorum             share of agents whose view ejects a member globally (0.5; (0,1])
//	health.probers            agents that probe each member (2; >= 1)
//	health.base_ejection_s    longest first stay out of local rotation; a passing
//	                          probe ends it sooner; doubles on each consecutive
//	                          ejection (5; > 0)
//	health.max_ejection_s     cap of the doubled ejection time (60; > 0)
//	health.confirm_timeout_s  deadline of the control plane's confirmation probe
//	                          when one agent ejects a member on path evidence (1; > 0)
//	circuit_breaker.failure_threshold failed group calls that open the breaker (10; >= 1)
//	circuit_breaker.reset_timeout_s   OPEN time before HALF_OPEN (60)
//	circuit_breaker.probe_count       calls admitted while HALF_OPEN (1; >= 1)
//	circuit_breaker.count_tool_errors isError results count as failures (false)
//	failover.max_attempts     attempts per call, the first included (2; 1..10)
//	failover.retry_on         tool names retried after timeout, transport or server
//	                          errors even without readOnlyHint/idempotentHint
//	failover.attempt_timeout_s attempt time after which a call of a tool safe to
//	                          repeat is cancelled upstream and moves to the next
//	                          member (default adaptive: 4 × the member's p99 for
//	                          the tool over the last minute, at least 0.25 s;
//	                          used only when the call's budget leaves the next
//	                          attempt as long)
//	tool_access.mode          front_door (also list the group's tools as ordinary
//	                          tools) or egress (hangar_call only, the default)
//	auto_start                checked (true or false) and unused
//
// A member entry with server keys besides id, priority and weight defines
// that server inline, as MCP Hangar allows; its id must not also be a
// top-level entry. A group cannot be a member of a group.
//
// failover, health.quorum, health.probers, circuit_breaker.probe_count,
// circuit_breaker.count_tool_errors and tool_access.mode: front_door on a
// group are Hangar's extensions. MCP Hangar 2.x ignores reset_timeout_s
// (its group breaker has no timer); Hangar honours it.
//
// Keys of MCP Hangar that configure policies Hangar does not enforce are
// errors rather than silently dropped: tools (allow/deny lists or predefined
// schemas), access, tool_projection, header_exposure, capabilities, canary,
// tool_access.member. Docker-only keys (image, volumes, build, resources,
// network, network_mode, read_only, user, args) are errors too.
package fleetfile
