package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// Names from the seed's failover recipe
// (internal/fleetfile/testdata/recipes/04-failover.yaml).
const (
	primaryName = "my-mcp"
	backupName  = "my-mcp-backup"
	groupName   = "my-mcp-group"
)

const (
	startTimeout = 20 * time.Second // for a process to print its ready line
	stopGrace    = 5 * time.Second  // SIGTERM to SIGKILL
)

var mathReady = regexp.MustCompile(`mcp-math listening name=\S+ addr=(\S+)`)

// upstream is a running mcp-math process.
type upstream struct {
	name  string
	addr  string // host:port
	proc  *proc.Process
	admin *mathserver.AdminClient
}

// startUpstream starts mcp-math named name on addr ("" for a free loopback
// port). A restart on a port just freed may race the kernel, so "address
// already in use" is retried for a few seconds.
func startUpstream(ctx context.Context, bin, name, addr string) (*upstream, error) {
	host, port := "127.0.0.1", "0"
	if addr != "" {
		host, port, _ = strings.Cut(addr, ":")
	}
	spec := proc.Spec{
		Name:  "mcp-math " + name,
		Path:  filepath.Join(bin, "mcp-math"),
		Args:  []string{"--name", name, "--host", host, "--port", port},
		Ready: mathReady,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := proc.Start(spec, startTimeout)
		if err == nil {
			u := &upstream{name: name, addr: p.Ready(), proc: p}
			u.admin = mathserver.NewAdminClient("http://" + u.addr)
			return u, nil
		}
		if addr == "" || !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// url is the upstream's MCP endpoint.
func (u *upstream) url() string { return "http://" + u.addr + "/mcp" }

// addCalls returns how many add calls the upstream says it served.
func (u *upstream) addCalls(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := u.admin.Stats(ctx)
	if err != nil {
		return 0, fmt.Errorf("ask %s for its served calls: %w", u.name, err)
	}
	return int(st.Calls["add"]), nil
}

// configTemplate is recipe 04 (failover) with the demo's endpoints and a
// short health check interval, so a dead member is noticed in seconds. It
// is the fleet file the control plane serves to every agent.
var configTemplate = template.Must(template.New("config").Parse(`# Recipe 04 (failover), from internal/fleetfile/testdata/recipes/04-failover.yaml,
# with this demo's endpoints and health checks every {{.Interval}} s instead of 30 s.
mcp_servers:
  my-mcp:
    mode: remote
    endpoint: {{.Primary}}
    description: "Primary MCP server"
    health_check_interval_s: {{.Interval}}
    max_consecutive_failures: 3
    http:
      connect_timeout: 10.0
      read_timeout: 30.0

  my-mcp-backup:
    mode: remote
    endpoint: {{.Backup}}
    description: "Backup MCP server"
    health_check_interval_s: {{.Interval}}
    max_consecutive_failures: 3
    http:
      connect_timeout: 10.0
      read_timeout: 30.0

  my-mcp-group:
    mode: group
    description: "Primary/backup MCP failover"
    strategy: priority
    min_healthy: 1
    circuit_breaker:
      failure_threshold: 3
      reset_timeout_s: 30
    members:
      - id: my-mcp
        priority: 1
      - id: my-mcp-backup
        priority: 2
`))

// writeConfig writes the fleet file into dir and returns its path and text.
// The control plane stores it in etcd; the agents get it in its snapshots.
func writeConfig(dir, primaryURL, backupURL string) (path, text string, err error) {
	var b bytes.Buffer
	data := struct {
		Primary, Backup string
		Interval        int
	}{primaryURL, backupURL, healthIntervalSec}
	if err := configTemplate.Execute(&b, data); err != nil {
		return "", "", fmt.Errorf("render config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create work dir: %w", err)
	}
	path = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", "", fmt.Errorf("write config: %w", err)
	}
	return path, b.String(), nil
}
