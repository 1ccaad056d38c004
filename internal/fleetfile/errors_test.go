package fleetfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/errors/*.golden")

// TestParseErrors checks one rule per case; want is the exact error text,
// one problem per line.
func TestParseErrors(t *testing.T) {
	const remoteA = "  a: {mode: remote, endpoint: \"http://a/mcp\"}\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		// The file.
		{"empty file", "", nil,
			`c.yaml:1: mcp_servers: missing: the file is empty; it needs an mcp_servers map of server ids to entries`},
		{"only comments", "# nothing\n", nil,
			`c.yaml:1: mcp_servers: missing: the file is empty; it needs an mcp_servers map of server ids to entries`},
		{"no mcp_servers", "logging: {level: INFO}\n", nil,
			`c.yaml:1: mcp_servers: missing: the file needs an mcp_servers map of server ids to entries`},
		{"empty mcp_servers", "mcp_servers: {}\n", nil,
			`c.yaml:1: mcp_servers: no servers: define at least one server`},
		{"null mcp_servers", "mcp_servers:\n", nil,
			`c.yaml:1: mcp_servers: expected a map, got nothing`},
		{"top level not a map", "- a\n", nil,
			`c.yaml:1: expected a map with an mcp_servers key at the top of the file, got a list`},
		{"two documents", "mcp_servers: {}\n---\nmcp_servers: {}\n", nil,
			`c.yaml:2: more than one YAML document (---): a fleet file holds one`},
		{"yaml syntax", "mcp_servers:\n  a: [\n", nil,
			`c.yaml:2: invalid YAML: did not find expected node content`},
		{"key indented less than its block", "mcp_servers:\n  a:\n    command: [a]\n   b: {command: [b]}\n", nil,
			`c.yaml:4: invalid YAML: did not find expected key: this line is indented differently from the lines above it`},
		{"list item out of line", "mcp_servers:\n  a:\n    command:\n      - a\n    - b\n", nil,
			`c.yaml:5: invalid YAML: did not find expected key: this line is indented differently from the lines above it`},
		{"key among list items", "mcp_servers:\n  g:\n    members:\n      - id: a\n      x: 1\n", nil,
			`c.yaml:5: invalid YAML: did not find expected '-' indicator: this line is indented differently from the lines above it`},
		{"both providers and mcp_servers", "providers: {a: {command: [a]}}\nmcp_servers: {b: {command: [b]}}\n", nil,
			`c.yaml:2: "providers" and "mcp_servers" both list servers; keep only mcp_servers (providers is its old name)`},
		{"unknown top-level key", "mcp_server: {a: {command: [a]}}\n", nil,
			"c.yaml:1: unknown key \"mcp_server\" (did you mean \"mcp_servers\"?); Hangar reads mcp_servers, health_check and tool_access and ignores MCP Hangar's process sections\n" +
				"c.yaml:1: mcp_servers: missing: the file needs an mcp_servers map of server ids to entries"},
		{"rejected section", "mcp_servers: {a: {command: [a]}}\napprovals: {enabled: true}\n", nil,
			`c.yaml:2: section "approvals": human approval holds are not supported by Hangar; remove it`},
		{"health_check disabled", "mcp_servers: {a: {command: [a]}}\nhealth_check: {enabled: false}\n", nil,
			`c.yaml:2: health_check.enabled: Hangar always probes its servers; remove enabled: false`},

		// Keys and ids.
		{"misspelt key", "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://a/mcp\n    max_consecutive_failure: 3\n", nil,
			`c.yaml:5: mcp_servers.a: unknown key "max_consecutive_failure" (did you mean "max_consecutive_failures"?)`},
		{"misspelt nested key", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], circuit_breaker: {failure_treshold: 3}}\n", nil,
			`c.yaml:3: mcp_servers.g.circuit_breaker: unknown key "failure_treshold" (did you mean "failure_threshold"?)`},
		{"duplicate id", "mcp_servers:\n" + remoteA + remoteA, nil,
			`c.yaml:3: mcp_servers: duplicate key "a" (first at line 2)`},
		{"duplicate key in entry", "mcp_servers:\n  a:\n    command: [a]\n    command: [b]\n", nil,
			`c.yaml:4: mcp_servers.a: duplicate key "command" (first at line 3)`},
		{"invalid id", "mcp_servers:\n  \"my server\": {command: [a]}\n", nil,
			`c.yaml:2: mcp_servers: invalid id "my server": use at most 64 letters, digits, '_', '-' and '.', starting with a letter or digit`},

		// Types.
		{"string for integer", "mcp_servers:\n  a: {command: [a], max_consecutive_failures: \"3\"}\n", nil,
			`c.yaml:2: mcp_servers.a.max_consecutive_failures: expected an integer, got a string ("3")`},
		{"float for integer", "mcp_servers:\n  a: {command: [a], max_consecutive_failures: 2.5}\n", nil,
			`c.yaml:2: mcp_servers.a.max_consecutive_failures: expected an integer, got a number (2.5)`},
		{"string for seconds", "mcp_servers:\n  a: {command: [a], health_check_interval_s: 30s}\n", nil,
			`c.yaml:2: mcp_servers.a.health_check_interval_s: expected a number, got a string ("30s")`},
		{"string command", "mcp_servers:\n  a: {command: python -m srv}\n", nil,
			`c.yaml:2: mcp_servers.a.command: expected a list, got a string ("python -m srv")`},
		{"number in command", "mcp_servers:\n  a: {command: [srv, 8080]}\n", nil,
			`c.yaml:2: mcp_servers.a.command[1]: expected a string, got an integer (8080)`},
		{"entry not a map", "mcp_servers:\n  a: remote\n", nil,
			`c.yaml:2: mcp_servers.a: expected a map, got a string ("remote")`},
		{"bool as yes", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], circuit_breaker: {count_tool_errors: yes}}\n", nil,
			`c.yaml:3: mcp_servers.g.circuit_breaker.count_tool_errors: expected true or false, got a string ("yes")`},
		{"member as string", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [a]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0]: expected a map like {id: a}, got a string ("a")`},

		// Modes and mode keys.
		{"unknown mode", "mcp_servers:\n  a: {mode: remtoe, endpoint: \"http://a/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.mode: unknown mode "remtoe" (did you mean "remote"?)`},
		{"docker mode", "mcp_servers:\n  a: {mode: docker, image: \"my-mcp:latest\"}\n", nil,
			`c.yaml:2: mcp_servers.a.mode: mode "docker" is not supported: Hangar runs remote, subprocess and group entries (run the container yourself and point a remote entry at it, or start it as a subprocess with command: [docker, run, -i, --rm, IMAGE])`},
		{"remote without endpoint", "mcp_servers:\n  a: {mode: remote}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: missing: a remote server needs the URL of its Streamable HTTP endpoint`},
		{"subprocess without command", "mcp_servers:\n  a: {mode: subprocess}\n", nil,
			`c.yaml:2: mcp_servers.a.command: missing: a subprocess server needs a command, e.g. [python, -m, my_server]`},
		{"empty command", "mcp_servers:\n  a: {command: []}\n", nil,
			`c.yaml:2: mcp_servers.a.command: empty: give the program and its arguments, e.g. [python, -m, my_server]`},
		{"endpoint without mode", "mcp_servers:\n  a: {endpoint: \"http://a/mcp\"}\n", nil,
			"c.yaml:2: mcp_servers.a: \"endpoint\" applies only to mode remote, not subprocess (this entry has no mode, so it is a subprocess; set mode)\n" +
				"c.yaml:2: mcp_servers.a.command: missing: a subprocess server needs a command, e.g. [python, -m, my_server]"},
		{"group key on server", "mcp_servers:\n  a: {command: [a], strategy: priority}\n", nil,
			`c.yaml:2: mcp_servers.a: "strategy" applies only to mode group, not subprocess (this entry has no mode, so it is a subprocess; set mode)`},
		{"server key on group", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], health_check_interval_s: 5}\n", nil,
			`c.yaml:3: mcp_servers.g: "health_check_interval_s" applies only to mode remote and subprocess, not group`},
		{"headers on subprocess", "mcp_servers:\n  a: {command: [a], http: {headers: {X: y}}}\n", nil,
			`c.yaml:2: mcp_servers.a.http: "headers" applies only to mode remote`},
		{"unsupported tools policy", "mcp_servers:\n  a: {command: [a], tools: {deny_list: [rm]}}\n", nil,
			`c.yaml:2: mcp_servers.a: "tools": tool allow/deny lists and predefined tool schemas are not supported by Hangar; every tool the server lists is offered; remove it`},
		{"docker key on subprocess", "mcp_servers:\n  a: {command: [a], volumes: [\"./d:/d\"]}\n", nil,
			`c.yaml:2: mcp_servers.a: "volumes" applies only to mode docker, which Hangar does not run`},
		{"sse transport", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/sse\", transport: sse}\n", nil,
			`c.yaml:2: mcp_servers.a.transport: the legacy SSE transport is not supported: Hangar speaks Streamable HTTP to remote servers`},

		// Endpoints.
		{"endpoint scheme", "mcp_servers:\n  a: {mode: remote, endpoint: \"ftp://a/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "ftp://a/mcp": the scheme must be http or https`},
		{"endpoint without scheme", "mcp_servers:\n  a: {mode: remote, endpoint: \"localhost:8080/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "localhost:8080/mcp": the scheme must be http or https`},
		{"endpoint without host", "mcp_servers:\n  a: {mode: remote, endpoint: \"http:///mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "http:///mcp": no host`},
		{"endpoint bad port", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a:99999/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "http://a:99999/mcp": bad port "99999"`},
		{"endpoint with credentials", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://u:p@a/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "http://u:p@a/mcp": put credentials in auth, not in the URL`},
		{"endpoint unparsable", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a b/mcp\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "http://a b/mcp": invalid character " " in host name`},
		{"endpoint empty", "mcp_servers:\n  a: {mode: remote, endpoint: \"\"}\n", nil,
			`c.yaml:2: mcp_servers.a.endpoint: empty: give the URL of the server's Streamable HTTP endpoint, e.g. http://localhost:8080/mcp`},

		// Ranges.
		{"priority zero", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a, priority: 0}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0].priority: 0 is out of range: must be 1..100`},
		{"weight too big", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a, weight: 101}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0].weight: 101 is out of range: must be 1..100`},
		{"threshold zero", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], health: {unhealthy_threshold: 0}}\n", nil,
			`c.yaml:3: mcp_servers.g.health.unhealthy_threshold: 0 is out of range: must be at least 1`},
		{"quorum zero", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], health: {quorum: 0}}\n", nil,
			`c.yaml:3: mcp_servers.g.health.quorum: 0 is out of range: must be more than 0 and at most 1`},
		{"quorum above one", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], health: {quorum: 1.5}}\n", nil,
			`c.yaml:3: mcp_servers.g.health.quorum: 1.5 is out of range: must be more than 0 and at most 1`},
		{"timeout zero", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", http: {read_timeout: 0}}\n", nil,
			`c.yaml:2: mcp_servers.a.http.read_timeout: 0 is out of range: seconds must be greater than 0 and at most 86400`},
		{"timeout infinite", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", http: {read_timeout: .inf}}\n", nil,
			`c.yaml:2: mcp_servers.a.http.read_timeout: expected a number, got a number (.inf)`},
		{"reset timeout negative", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], circuit_breaker: {reset_timeout_s: -1}}\n", nil,
			`c.yaml:3: mcp_servers.g.circuit_breaker.reset_timeout_s: -1 is out of range: seconds must be greater than 0 and at most 86400`},
		{"max_attempts above ten", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], failover: {max_attempts: 11}}\n", nil,
			`c.yaml:3: mcp_servers.g.failover.max_attempts: 11 is out of range: must be 1..10`},
		{"max_attempts zero", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], failover: {max_attempts: 0}}\n", nil,
			`c.yaml:3: mcp_servers.g.failover.max_attempts: 0 is out of range: must be 1..10`},
		{"min_healthy negative", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], min_healthy: -1}\n", nil,
			`c.yaml:3: mcp_servers.g.min_healthy: -1 is out of range: must be at least 0`},
		{"min_healthy above members", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], min_healthy: 2}\n", nil,
			`c.yaml:3: mcp_servers.g.min_healthy: 2 is more than the group's 1 members`},
		{"max_consecutive_failures above 100", "mcp_servers:\n  a: {command: [a], max_consecutive_failures: 101}\n", nil,
			`c.yaml:2: mcp_servers.a.max_consecutive_failures: 101 is out of range: must be 1..100`},

		// Groups.
		{"unknown strategy", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], strategy: weighted}\n", nil,
			`c.yaml:3: mcp_servers.g.strategy: unknown strategy "weighted" (did you mean "weighted_round_robin"?); valid strategies: priority, round_robin, weighted_round_robin, least_connections, random`},
		{"unknown member", "mcp_servers:\n  my-mcp: {command: [a]}\n  g: {mode: group, members: [{id: my-mcpp}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0].id: unknown server "my-mcpp" (did you mean "my-mcp"?)`},
		{"group as member", "mcp_servers:\n" + remoteA + "  g1: {mode: group, members: [{id: a}]}\n  g2: {mode: group, members: [{id: g1}]}\n", nil,
			`c.yaml:4: mcp_servers.g2.members[0].id: "g1" is a group: a group cannot be a member of a group`},
		{"inline group as member", "mcp_servers:\n  g: {mode: group, members: [{id: sub, mode: group, members: []}]}\n", nil,
			`c.yaml:2: mcp_servers.g.members[0]: "sub" is a group: a group cannot be a member of a group`},
		{"duplicate member", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}, {id: a}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[1].id: duplicate member "a" (also members[0])`},
		{"member without id", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{priority: 1}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0].id: missing: each member needs the id of a server`},
		{"no members", "mcp_servers:\n" + remoteA + "  g: {mode: group}\n", nil,
			`c.yaml:3: mcp_servers.g.members: missing: a group needs a members list, e.g. [{id: my-mcp}]`},
		{"empty members", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: []}\n", nil,
			`c.yaml:3: mcp_servers.g.members: empty: a group needs at least one member`},
		{"inline member shadows entry", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a, mode: remote, endpoint: \"http://b/mcp\"}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0].id: "a" is also defined at line 2: an inline member needs its own id (or keep only id, priority and weight to use that entry)`},
		{"unknown member key", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a, wieght: 2}]}\n", nil,
			`c.yaml:3: mcp_servers.g.members[0]: unknown key "wieght" (did you mean "weight"?)`},
		{"unknown tool_access mode", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], tool_access: {mode: front-door}}\n", nil,
			`c.yaml:3: mcp_servers.g.tool_access.mode: unknown tool_access mode "front-door" (did you mean "front_door"?)`},
		{"flat reset timeout", "mcp_servers:\n" + remoteA + "  g: {mode: group, members: [{id: a}], circuit_reset_timeout_s: 30}\n", nil,
			`c.yaml:3: mcp_servers.g: "circuit_reset_timeout_s": write circuit_breaker.reset_timeout_s instead; remove it`},

		// Auth, headers, tls.
		{"auth without type", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", auth: {bearer_token: t}}\n", nil,
			`c.yaml:2: mcp_servers.a.auth.type: missing: one of none, api_key, bearer, basic`},
		{"auth missing token", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", auth: {type: bearer}}\n", nil,
			`c.yaml:2: mcp_servers.a.auth.bearer_token: missing: auth type bearer needs bearer_token`},
		{"top-level tool_access without a group", "tool_access: {mode: front_door}\nmcp_servers:\n" + remoteA, nil,
			`c.yaml:1: tool_access.mode: top-level tool_access.mode "front_door" has no effect: it is the default of groups' tool_access, and no group takes it (the fleet has no group, or every group sets its own); move it into a group (mode: group) or remove it`},
		{"tool_access on a remote server", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", tool_access: {mode: front_door}}\n", nil,
			`c.yaml:2: mcp_servers.a: "tool_access" applies only to mode group, not remote`},
		{"auth key of another type", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", auth: {type: bearer, bearer_token: t, username: u}}\n", nil,
			`c.yaml:2: mcp_servers.a.auth: "username" does not apply to auth type bearer`},
		{"auth header twice", "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://a/mcp\n    http: {headers: {authorization: x}}\n    auth: {type: bearer, bearer_token: t}\n", nil,
			`c.yaml:6: mcp_servers.a.auth.bearer_token: header Authorization is set twice (also at line 5)`},
		{"reserved header", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", http: {headers: {Mcp-Session-Id: x}}}\n", nil,
			`c.yaml:2: mcp_servers.a.http.headers.Mcp-Session-Id: header Mcp-Session-Id is set by Hangar's MCP client and cannot be configured`},
		{"header injection", "mcp_servers:\n  a: {mode: remote, endpoint: \"http://a/mcp\", http: {headers: {X-A: \"v\\r\\nX-B: w\"}}}\n", nil,
			`c.yaml:2: mcp_servers.a.http.headers.X-A: header value contains a line break or NUL byte`},
		{"tls contradiction", "mcp_servers:\n  a: {mode: remote, endpoint: \"https://a/mcp\", tls: {verify_ssl: false, ca_cert_path: /ca.pem}}\n", nil,
			`c.yaml:2: mcp_servers.a.tls.ca_cert_path: has no effect with verify_ssl: false; remove one of them`},

		// Variables.
		{"unset variable", "mcp_servers:\n  a:\n    mode: remote\n    endpoint: \"${MCP_URL}\"\n", nil,
			`c.yaml:4: mcp_servers.a.endpoint: environment variable MCP_URL is not set and has no default (write ${MCP_URL:-} to allow an empty value)`},
		{"unset variable in list", "mcp_servers:\n  a: {command: [srv, \"--token=${TOKEN}\"]}\n", nil,
			`c.yaml:2: mcp_servers.a.command[1]: environment variable TOKEN is not set and has no default (write ${TOKEN:-} to allow an empty value)`},
		{"variable in key not expanded", "mcp_servers:\n  ${ID}: {command: [a]}\n", nil,
			`c.yaml:2: mcp_servers: invalid id "${ID}": use at most 64 letters, digits, '_', '-' and '.', starting with a letter or digit`},
		{"set variable yields bad value", "mcp_servers:\n  a: {mode: remote, endpoint: \"${URL}\"}\n", map[string]string{"URL": "localhost"},
			`c.yaml:2: mcp_servers.a.endpoint: invalid URL "localhost": the scheme must be http or https`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("c.yaml", []byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded with order %v, want errors:\n%s", f.Order, tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenErrors parses each testdata/errors/*.yaml and compares the
// error text with its .golden file; go test ./internal/fleetfile -update
// rewrites them.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no error files: %v", err)
	}
	lookup := env(map[string]string{"HANGAR_TEST_SET": "set"})
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse(name, data, lookup)
			if perr == nil {
				t.Fatalf("%s parsed without errors", name)
			}
			got := perr.Error() + "\n"
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/fleetfile -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s errors (-want +got):\n%s", name, diff)
			}
		})
	}
}
