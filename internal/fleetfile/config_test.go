package fleetfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// env is a lookupEnv over a fixed map.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func remote(id, endpoint, description string, interval time.Duration) *Server {
	return &Server{
		ID:                     id,
		Mode:                   ModeRemote,
		Description:            description,
		Endpoint:               endpoint,
		HealthCheckInterval:    interval,
		MaxConsecutiveFailures: 3,
		HTTP:                   HTTPConfig{ConnectTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second},
	}
}

func group(id, description string, strategy Strategy, members ...Member) *Group {
	return &Group{
		ID:             id,
		Description:    description,
		Strategy:       strategy,
		MinHealthy:     1,
		Members:        members,
		Health:         GroupHealth{UnhealthyThreshold: 2, HealthyThreshold: 1, Quorum: 0.5, Probers: 2, BaseEjection: 5 * time.Second, MaxEjection: time.Minute, ConfirmTimeout: time.Second},
		CircuitBreaker: CircuitBreaker{FailureThreshold: 10, ResetTimeout: 60 * time.Second, ProbeCount: 1},
		Failover:       Failover{MaxAttempts: 2},
	}
}

func TestRecipes(t *testing.T) {
	primary := remote("my-mcp", "http://localhost:8080/mcp", "Primary MCP server", 30*time.Second)
	backup := remote("my-mcp-backup", "http://localhost:8081/mcp", "Backup MCP server", 30*time.Second)

	cbGroup := group("my-mcp-group", "My MCP group with circuit breaker", StrategyRoundRobin, Member{ID: "my-mcp", Priority: 1, Weight: 1})
	cbGroup.CircuitBreaker.FailureThreshold = 3
	cbGroup.CircuitBreaker.ResetTimeout = 30 * time.Second

	foGroup := group("my-mcp-group", "Primary/backup MCP failover", StrategyPriority,
		Member{ID: "my-mcp", Priority: 1, Weight: 1}, Member{ID: "my-mcp-backup", Priority: 2, Weight: 1})
	foGroup.CircuitBreaker.FailureThreshold = 3
	foGroup.CircuitBreaker.ResetTimeout = 30 * time.Second

	tests := []struct {
		file string
		want *Fleet
	}{
		{
			file: "02-health-checks.yaml",
			want: &Fleet{
				Servers: map[string]*Server{"my-mcp": remote("my-mcp", "http://localhost:8080/mcp", "My remote MCP server", 30*time.Second)},
				Groups:  map[string]*Group{},
				Order:   []string{"my-mcp"},
			},
		},
		{
			file: "03-circuit-breaker.yaml",
			want: &Fleet{
				Servers: map[string]*Server{"my-mcp": remote("my-mcp", "http://localhost:8080/mcp", "My remote MCP server", 30*time.Second)},
				Groups:  map[string]*Group{"my-mcp-group": cbGroup},
				Order:   []string{"my-mcp", "my-mcp-group"},
			},
		},
		{
			file: "04-failover.yaml",
			want: &Fleet{
				Servers: map[string]*Server{"my-mcp": primary, "my-mcp-backup": backup},
				Groups:  map[string]*Group{"my-mcp-group": foGroup},
				Order:   []string{"my-mcp", "my-mcp-backup", "my-mcp-group"},
			},
		},
		{
			file: "05-load-balancing.yaml",
			want: &Fleet{
				Servers: map[string]*Server{
					"my-mcp":        remote("my-mcp", "http://localhost:8080", "", 10*time.Second),
					"my-mcp-backup": remote("my-mcp-backup", "http://localhost:8081", "", 10*time.Second),
					"my-mcp-3":      remote("my-mcp-3", "http://localhost:8082", "", 10*time.Second),
				},
				Groups: map[string]*Group{"my-mcp-group": group("my-mcp-group", "", StrategyRoundRobin,
					Member{ID: "my-mcp", Priority: 1, Weight: 1},
					Member{ID: "my-mcp-backup", Priority: 1, Weight: 1},
					Member{ID: "my-mcp-3", Priority: 1, Weight: 1})},
				Order: []string{"my-mcp", "my-mcp-backup", "my-mcp-3", "my-mcp-group"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "recipes", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(tt.file, data, env(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Source, tt.want.Raw = tt.file, data
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecipeVariants loads the other published versions of the recipes:
// the legacy providers: name, the health_check section, SSE-era endpoints
// and the versions without reset_timeout_s.
func TestRecipeVariants(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "recipes", "variants", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no variants: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(filepath.Base(path), data, env(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			s, ok := f.Server("my-mcp")
			if !ok {
				t.Fatalf("no server my-mcp in %v", f.Order)
			}
			if !strings.HasPrefix(s.Endpoint, "http://localhost:8080") {
				t.Errorf("my-mcp endpoint = %q", s.Endpoint)
			}
			if g, ok := f.Group("my-mcp-group"); ok {
				wantReset := DefaultResetTimeout
				if strings.Contains(string(data), "reset_timeout_s: 30") {
					wantReset = 30 * time.Second
				}
				if g.CircuitBreaker.ResetTimeout != wantReset {
					t.Errorf("reset timeout = %v, want %v", g.CircuitBreaker.ResetTimeout, wantReset)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	data := []byte(`
mcp_servers:
  r: {mode: remote, endpoint: "https://example.com/mcp"}
  s: {mode: subprocess, command: [python, -m, srv]}
  g: {mode: group, members: [{id: r}, {id: s}]}
`)
	got, err := Parse("defaults.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Fleet{
		Source: "defaults.yaml",
		Raw:    data,
		Servers: map[string]*Server{
			"r": remote("r", "https://example.com/mcp", "", 30*time.Second),
			"s": {
				ID: "s", Mode: ModeSubprocess, Command: []string{"python", "-m", "srv"},
				HealthCheckInterval: 30 * time.Second, MaxConsecutiveFailures: 3,
				HTTP: HTTPConfig{ConnectTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second},
			},
		},
		Groups: map[string]*Group{"g": {
			ID: "g", Strategy: StrategyRoundRobin, MinHealthy: 1,
			Members:        []Member{{ID: "r", Priority: 1, Weight: 1}, {ID: "s", Priority: 1, Weight: 1}},
			Health:         GroupHealth{UnhealthyThreshold: 2, HealthyThreshold: 1, Quorum: 0.5, Probers: 2, BaseEjection: 5 * time.Second, MaxEjection: time.Minute, ConfirmTimeout: time.Second},
			CircuitBreaker: CircuitBreaker{FailureThreshold: 10, ResetTimeout: 60 * time.Second, ProbeCount: 1},
			Failover:       Failover{MaxAttempts: 2},
		}},
		Order: []string{"r", "s", "g"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

// TestEveryKey sets every key Hangar reads to a non-default value.
func TestEveryKey(t *testing.T) {
	data := []byte(`
mcp_servers:
  api:
    mode: remote
    description: API server
    endpoint: https://api.example.com:8443/mcp
    health_check_interval_s: 2.5
    max_consecutive_failures: 5
    max_concurrency: 7
    transport: streamable-http
    http:
      connect_timeout: 1
      read_timeout: 0.25
      max_retries: 3
      retry_backoff_factor: 0.5
      headers: {x-request-source: hangar, X-Num: 7}
    auth: {type: bearer, bearer_token: tok}
    tls: {verify_ssl: true, ca_cert_path: /etc/ca.pem}
  local:
    mode: subprocess
    command: [npx, -y, srv]
    env: {DEBUG: "1", PORT: 8080, VERBOSE: true}
    idle_ttl_s: 300
    transport: stdio
  pool:
    mode: group
    description: pool
    strategy: weighted_round_robin
    min_healthy: 2
    auto_start: false
    members:
      - {id: api, priority: 3, weight: 70}
      - {id: local, priority: 100, weight: 30}
    health: {unhealthy_threshold: 4, healthy_threshold: 3, quorum: 1, probers: 5, base_ejection_s: 2, max_ejection_s: 20, confirm_timeout_s: 0.5}
    circuit_breaker: {failure_threshold: 7, reset_timeout_s: 1.5, probe_count: 2, count_tool_errors: true}
    failover: {max_attempts: 10, retry_on: [search, fetch], attempt_timeout_s: 0.3}
    tool_access: {mode: front_door}
`)
	got, err := Parse("every.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Fleet{
		Source: "every.yaml",
		Raw:    data,
		Servers: map[string]*Server{
			"api": {
				ID: "api", Mode: ModeRemote, Description: "API server",
				Endpoint:            "https://api.example.com:8443/mcp",
				Headers:             map[string]string{"X-Request-Source": "hangar", "X-Num": "7", "Authorization": "Bearer tok"},
				TLS:                 TLSConfig{CAFile: "/etc/ca.pem"},
				MaxConcurrency:      7,
				HealthCheckInterval: 2500 * time.Millisecond, MaxConsecutiveFailures: 5,
				HTTP: HTTPConfig{ConnectTimeout: time.Second, ReadTimeout: 250 * time.Millisecond},
			},
			"local": {
				ID: "local", Mode: ModeSubprocess, Command: []string{"npx", "-y", "srv"},
				Env:     map[string]string{"DEBUG": "1", "PORT": "8080", "VERBOSE": "true"},
				IdleTTL: 300 * time.Second, HealthCheckInterval: 30 * time.Second, MaxConsecutiveFailures: 3,
				HTTP: HTTPConfig{ConnectTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second},
			},
		},
		Groups: map[string]*Group{"pool": {
			ID: "pool", Description: "pool", Strategy: StrategyWeightedRoundRobin, MinHealthy: 2,
			Members:        []Member{{ID: "api", Priority: 3, Weight: 70}, {ID: "local", Priority: 100, Weight: 30}},
			Health:         GroupHealth{UnhealthyThreshold: 4, HealthyThreshold: 3, Quorum: 1, Probers: 5, BaseEjection: 2 * time.Second, MaxEjection: 20 * time.Second, ConfirmTimeout: 500 * time.Millisecond},
			CircuitBreaker: CircuitBreaker{FailureThreshold: 7, ResetTimeout: 1500 * time.Millisecond, ProbeCount: 2, CountToolErrors: true},
			Failover:       Failover{MaxAttempts: 10, RetryOn: []string{"search", "fetch"}, AttemptTimeout: 300 * time.Millisecond},
			ToolAccess:     ToolAccess{Mode: "front_door"},
		}},
		Order: []string{"api", "local", "pool"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// TestValid covers accepted forms one at a time; check looks at the part
// of the Fleet the case is about.
func TestValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, f *Fleet)
	}{
		{
			name: "env set",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://${HOST}:${PORT}/mcp"}}`,
			env:  map[string]string{"HOST": "h", "PORT": "9"},
			check: func(t *testing.T, f *Fleet) {
				wantEndpoint(t, f, "a", "http://h:9/mcp")
			},
		},
		{
			name: "env default used when unset",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "${URL:-http://localhost:8080/mcp}"}}`,
			check: func(t *testing.T, f *Fleet) {
				wantEndpoint(t, f, "a", "http://localhost:8080/mcp")
			},
		},
		{
			name: "env set wins over default",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "${URL:-http://default/mcp}"}}`,
			env:  map[string]string{"URL": "http://set/mcp"},
			check: func(t *testing.T, f *Fleet) {
				wantEndpoint(t, f, "a", "http://set/mcp")
			},
		},
		{
			name: "env set but empty wins over default, as in MCP Hangar",
			yaml: `mcp_servers: {a: {command: [srv], env: {X: "[${EMPTY:-d}]", Y: "[${UNSET:-}]"}}}`,
			env:  map[string]string{"EMPTY": ""},
			check: func(t *testing.T, f *Fleet) {
				wantEnv(t, f, "a", map[string]string{"X": "[]", "Y": "[]"})
			},
		},
		{
			name: "literal dollar kept",
			yaml: `mcp_servers: {a: {command: [sh, -c, "echo $HOME costs $5 ${1} ${ unterminated ${A"]}}`,
			check: func(t *testing.T, f *Fleet) {
				s, _ := f.Server("a")
				if got, want := s.Command[2], "echo $HOME costs $5 ${1} ${ unterminated ${A"; got != want {
					t.Errorf("command = %q, want %q", got, want)
				}
			},
		},
		{
			name: "default not expanded again",
			yaml: `mcp_servers: {a: {command: ["${A:-${B}}"]}}`,
			env:  map[string]string{"B": "b"},
			check: func(t *testing.T, f *Fleet) {
				s, _ := f.Server("a")
				if got, want := s.Command[0], "${B}"; got != want {
					t.Errorf("command = %q, want %q (the seed's regex stops the default at the first })", got, want)
				}
			},
		},
		{
			name: "env in auth and headers",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://a/mcp", auth: {type: api_key, api_key: "${KEY}"}, http: {headers: {X-Tenant: "${T:-acme}"}}}}`,
			env:  map[string]string{"KEY": "k1"},
			check: func(t *testing.T, f *Fleet) {
				wantHeaders(t, f, "a", map[string]string{"X-Api-Key": "k1", "X-Tenant": "acme"})
			},
		},
		{
			name: "auth api_key with its own header",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://a/mcp", auth: {type: api_key, api_key: k, api_key_header: x-token}}}`,
			check: func(t *testing.T, f *Fleet) {
				wantHeaders(t, f, "a", map[string]string{"X-Token": "k"})
			},
		},
		{
			name: "auth basic",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://a/mcp", auth: {type: basic, username: u, password: p}}}`,
			check: func(t *testing.T, f *Fleet) {
				wantHeaders(t, f, "a", map[string]string{"Authorization": "Basic dTpw"})
			},
		},
		{
			name: "auth none",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://a/mcp", auth: {type: none}}}`,
			check: func(t *testing.T, f *Fleet) {
				wantHeaders(t, f, "a", nil)
			},
		},
		{
			name: "tls verify off",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "https://a/mcp", tls: {verify_ssl: false}}}`,
			check: func(t *testing.T, f *Fleet) {
				s, _ := f.Server("a")
				if !s.TLS.InsecureSkipVerify {
					t.Error("InsecureSkipVerify = false")
				}
			},
		},
		{
			name: "missing mode is subprocess",
			yaml: `mcp_servers: {a: {command: [srv]}}`,
			check: func(t *testing.T, f *Fleet) {
				if s, _ := f.Server("a"); s.Mode != ModeSubprocess {
					t.Errorf("mode = %q", s.Mode)
				}
			},
		},
		{
			name: "ids keep their case",
			yaml: `mcp_servers: {My-MCP: {command: [srv]}, my-mcp: {command: [srv]}, G: {mode: group, members: [{id: My-MCP}]}}`,
			check: func(t *testing.T, f *Fleet) {
				wantOrder(t, f, "My-MCP", "my-mcp", "G")
				if _, ok := f.Server("MY-MCP"); ok {
					t.Error("lookup ignored case")
				}
			},
		},
		{
			name: "group before its members",
			yaml: "mcp_servers:\n  g: {mode: group, members: [{id: b}, {id: a}]}\n  a: {command: [a]}\n  b: {command: [b]}\n",
			check: func(t *testing.T, f *Fleet) {
				wantOrder(t, f, "g", "a", "b")
				g, _ := f.Group("g")
				if g.Members[0].ID != "b" || g.Members[1].ID != "a" {
					t.Errorf("members = %v", g.Members)
				}
			},
		},
		{
			name: "inline member definition",
			yaml: "mcp_servers:\n  g:\n    mode: group\n    members:\n      - {id: llm-1, mode: subprocess, command: [llm], weight: 70}\n      - {id: x}\n  x: {mode: remote, endpoint: \"http://x/mcp\"}\n",
			check: func(t *testing.T, f *Fleet) {
				wantOrder(t, f, "g", "llm-1", "x")
				s, ok := f.Server("llm-1")
				if !ok || s.Mode != ModeSubprocess || s.Command[0] != "llm" {
					t.Errorf("inline server = %+v", s)
				}
				g, _ := f.Group("g")
				if g.Members[0] != (Member{ID: "llm-1", Priority: 1, Weight: 70}) {
					t.Errorf("member = %+v", g.Members[0])
				}
			},
		},
		{
			name: "inline member used by another group",
			yaml: "mcp_servers:\n  g2: {mode: group, members: [{id: m}]}\n  g1: {mode: group, members: [{id: m, command: [m]}]}\n",
			check: func(t *testing.T, f *Fleet) {
				wantOrder(t, f, "g2", "g1", "m")
			},
		},
		{
			name: "health_check interval is the default interval",
			yaml: "health_check: {enabled: true, interval_s: 12}\nmcp_servers:\n  a: {command: [a]}\n  b: {command: [b], health_check_interval_s: 5}\n",
			check: func(t *testing.T, f *Fleet) {
				a, _ := f.Server("a")
				b, _ := f.Server("b")
				if a.HealthCheckInterval != 12*time.Second || b.HealthCheckInterval != 5*time.Second {
					t.Errorf("intervals = %v, %v", a.HealthCheckInterval, b.HealthCheckInterval)
				}
			},
		},
		{
			name: "health is another name of health_check",
			yaml: "mcp_servers: {a: {command: [a]}}\nhealth: {interval_s: 7}\n",
			check: func(t *testing.T, f *Fleet) {
				if a, _ := f.Server("a"); a.HealthCheckInterval != 7*time.Second {
					t.Errorf("interval = %v", a.HealthCheckInterval)
				}
			},
		},
		{
			name: "top-level tool_access is the groups' default",
			yaml: "tool_access: {mode: front_door}\nmcp_servers:\n  a: {command: [a]}\n  g1: {mode: group, members: [{id: a}]}\n  g2: {mode: group, members: [{id: a}], tool_access: {mode: egress}}\n",
			check: func(t *testing.T, f *Fleet) {
				g1, _ := f.Group("g1")
				g2, _ := f.Group("g2")
				if g1.ToolAccess.Mode != "front_door" || g2.ToolAccess.Mode != "" {
					t.Errorf("modes = %q, %q", g1.ToolAccess.Mode, g2.ToolAccess.Mode)
				}
			},
		},
		{
			name: "process sections ignored",
			yaml: "logging: {level: INFO, file: \"${UNSET_LOG}\"}\nobservability: {tracing: {enabled: true}}\nexecution: {max_concurrency: 50}\nretry: {default_policy: {max_attempts: 3}}\n" +
				"event_store: {enabled: true}\nconfig_reload: {enabled: true}\nhttp: {graceful_shutdown_timeout_s: 5}\nrelay_tasks_enabled: true\n" +
				"auth: {enabled: false}\ndiscovery: {enabled: false}\nmcp_servers: {a: {command: [a]}}\n",
			check: func(t *testing.T, f *Fleet) { wantOrder(t, f, "a") },
		},
		{
			name: "anchors aliases and merge keys",
			yaml: "mcp_servers:\n  a: &base {mode: remote, endpoint: \"http://a/mcp\", max_consecutive_failures: 5}\n  b:\n    <<: *base\n    endpoint: \"http://b/mcp\"\n",
			check: func(t *testing.T, f *Fleet) {
				wantEndpoint(t, f, "b", "http://b/mcp")
				if b, _ := f.Server("b"); b.MaxConsecutiveFailures != 5 {
					t.Errorf("merged max_consecutive_failures = %d", b.MaxConsecutiveFailures)
				}
			},
		},
		{
			name: "min_healthy 0 and all members",
			yaml: "mcp_servers:\n  a: {command: [a]}\n  g0: {mode: group, min_healthy: 0, members: [{id: a}]}\n  g1: {mode: group, min_healthy: 1, members: [{id: a}]}\n",
			check: func(t *testing.T, f *Fleet) {
				if g, _ := f.Group("g0"); g.MinHealthy != 0 {
					t.Errorf("min_healthy = %d", g.MinHealthy)
				}
			},
		},
		{
			name: "idle_ttl_s zero and on remote",
			yaml: "mcp_servers:\n  a: {command: [a], idle_ttl_s: 0}\n  r: {mode: remote, endpoint: \"http://r/mcp\", idle_ttl_s: 600}\n",
			check: func(t *testing.T, f *Fleet) {
				if r, _ := f.Server("r"); r.IdleTTL != 0 {
					t.Errorf("remote IdleTTL = %v, want 0 (unused)", r.IdleTTL)
				}
			},
		},
		{
			name: "ipv6 endpoint",
			yaml: `mcp_servers: {a: {mode: remote, endpoint: "http://[::1]:8080/mcp?x=1"}}`,
			check: func(t *testing.T, f *Fleet) {
				wantEndpoint(t, f, "a", "http://[::1]:8080/mcp?x=1")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("config.yaml", []byte(tt.yaml), env(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, f)
		})
	}
}

func wantEndpoint(t *testing.T, f *Fleet, id, want string) {
	t.Helper()
	s, ok := f.Server(id)
	if !ok {
		t.Fatalf("no server %q", id)
	}
	if s.Endpoint != want {
		t.Errorf("%s endpoint = %q, want %q", id, s.Endpoint, want)
	}
}

func wantEnv(t *testing.T, f *Fleet, id string, want map[string]string) {
	t.Helper()
	s, _ := f.Server(id)
	if diff := cmp.Diff(want, s.Env); diff != "" {
		t.Errorf("%s env (-want +got):\n%s", id, diff)
	}
}

func wantHeaders(t *testing.T, f *Fleet, id string, want map[string]string) {
	t.Helper()
	s, _ := f.Server(id)
	if diff := cmp.Diff(want, s.Headers); diff != "" {
		t.Errorf("%s headers (-want +got):\n%s", id, diff)
	}
}

func wantOrder(t *testing.T, f *Fleet, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, f.Order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestErrorsValue(t *testing.T) {
	data := "mcp_servers:\n  g: {mode: group, members: [{id: nope}]}\n  a: {mode: remote}\n"
	f, err := Parse("c.yaml", []byte(data), nil)
	if f != nil {
		t.Errorf("Fleet = %+v, want nil on error", f)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors", err)
	}
	want := Errors{
		{File: "c.yaml", Line: 2, Path: "mcp_servers.g.members[0].id", Msg: `unknown server "nope"`},
		{File: "c.yaml", Line: 3, Path: "mcp_servers.a.endpoint", Msg: "missing: a remote server needs the URL of its Streamable HTTP endpoint"},
	}
	if diff := cmp.Diff(want, errs); diff != "" {
		t.Errorf("Errors (-want +got):\n%s", diff)
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 2 {
		t.Errorf("errors.As(*Error) = %v", one)
	}
	if got, want := err.Error(), "c.yaml:2: mcp_servers.g.members[0].id: unknown server \"nope\"\n"+
		"c.yaml:3: mcp_servers.a.endpoint: missing: a remote server needs the URL of its Streamable HTTP endpoint"; got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(`mcp_servers: {a: {mode: remote, endpoint: "${HANGAR_CONFIG_TEST_URL}"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("expands the process environment", func(t *testing.T) {
		t.Setenv("HANGAR_CONFIG_TEST_URL", "http://from-env/mcp")
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		wantEndpoint(t, f, "a", "http://from-env/mcp")
		if f.Source != path {
			t.Errorf("Source = %q", f.Source)
		}
	})
	t.Run("names the file in errors", func(t *testing.T) {
		_, err := Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+":1: mcp_servers.a.endpoint: environment variable HANGAR_CONFIG_TEST_URL is not set") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		big := filepath.Join(dir, "big.yaml")
		if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxFileSize)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestFleetLookupNil(t *testing.T) {
	var f *Fleet
	if _, ok := f.Server("a"); ok {
		t.Error("Server on nil Fleet found something")
	}
	if _, ok := f.Group("a"); ok {
		t.Error("Group on nil Fleet found something")
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"max_consecutive_failures", "health_check_interval_s", "endpoint", "http"}
	tests := []struct{ word, want string }{
		{"max_consecutive_failure", "max_consecutive_failures"},
		{"endpiont", "endpoint"},
		{"Endpoint", "endpoint"},
		{"health_check", "health_check_interval_s"},
		{"htp", "http"},
		{"zzz", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			if got := suggest(tt.word, keys); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/recipes", "testdata/recipes/variants", "testdata/errors"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, path := range files {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("mcp_servers: {a: {<<: [*x]}}"))
	f.Add([]byte("mcp_servers:\n  a:\n    command: [a]\n   b: {command: [b]}\n"))
	lookup := env(map[string]string{"HANGAR_TEST_SET": "set"})
	f.Fuzz(func(t *testing.T, data []byte) {
		fleet, err := Parse("fuzz.yaml", data, lookup)
		if (fleet == nil) == (err == nil) {
			t.Fatalf("Parse returned fleet %v and error %v", fleet != nil, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range errs {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Line > lines+1 {
					t.Errorf("error %+v: want file fuzz.yaml, a message and a line in 0..%d", e, lines+1)
				}
			}
			return
		}
		for _, id := range fleet.Order {
			_, isServer := fleet.Servers[id]
			_, isGroup := fleet.Groups[id]
			if isServer == isGroup {
				t.Fatalf("id %q: server %v, group %v", id, isServer, isGroup)
			}
		}
		for _, g := range fleet.Groups {
			for _, m := range g.Members {
				if _, ok := fleet.Servers[m.ID]; !ok {
					t.Fatalf("group %s member %s names no server", g.ID, m.ID)
				}
			}
		}
	})
}

// TestAliasExpansionBounded checks that merge keys nested through anchors,
// which double the work at every level, stop at the work budget.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &a0 {command: [a]}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	b.WriteString("mcp_servers:\n  a: *a40\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("err = %v, want the expansion limit", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse took %v", d)
	}
}

// TestParseAsControlPlane: the control plane reads no environment. A
// reference takes its default there even when the control plane's own
// environment sets it, and one without a default is left to the agents:
// no error on the control plane, the value unchecked and empty; the same
// text on an agent expands against the agent's environment.
func TestParseAsControlPlane(t *testing.T) {
	src := []byte(`mcp_servers:
  a: {mode: remote, endpoint: "${HANGAR_FLEET_TEST_A}"}
  b: {mode: remote, endpoint: "${HANGAR_FLEET_TEST_B:-http://b/mcp}"}
  g: {mode: group, members: [{id: a}, {id: b}]}
`)
	t.Setenv("HANGAR_FLEET_TEST_B", "http://control-plane-only/mcp")
	cp, err := ParseAs(ControlPlane, "etcd:config", src)
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	wantEndpoint(t, cp, "a", "")
	wantEndpoint(t, cp, "b", "http://b/mcp")
	if g, ok := cp.Group("g"); !ok || len(g.Members) != 2 {
		t.Errorf("control plane: group g = %+v, want two members", g)
	}

	if _, err := ParseAs(Agent, "snapshot", src); err == nil || !strings.Contains(err.Error(), "HANGAR_FLEET_TEST_A is not set") {
		t.Errorf("agent without the variable: err = %v, want one naming HANGAR_FLEET_TEST_A", err)
	}
	t.Setenv("HANGAR_FLEET_TEST_A", "http://via-proxy/mcp")
	agent, err := ParseAs(Agent, "snapshot", src)
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	wantEndpoint(t, agent, "a", "http://via-proxy/mcp")
	wantEndpoint(t, agent, "b", "http://control-plane-only/mcp")
}

// Hash fingerprints the bytes as written: the same text gives the same
// hash on every process, and ${VAR} is not expanded first.
func TestHash(t *testing.T) {
	if got, want := Hash(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("Hash(nil) = %s, want %s", got, want)
	}
	t.Setenv("HANGAR_FLEET_TEST_HASH", "x")
	if Hash([]byte("a: ${HANGAR_FLEET_TEST_HASH}")) == Hash([]byte("a: x")) {
		t.Error("Hash expanded a variable")
	}
}
