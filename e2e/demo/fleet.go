package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// Names from the seed's failover recipe
// (dataplane/config/testdata/recipes/04-failover.yaml).
const (
	primaryName = "my-mcp"
	backupName  = "my-mcp-backup"
	groupName   = "my-mcp-group"
)

const (
	startTimeout = 20 * time.Second // for a process to print its ready line
	stopGrace    = 5 * time.Second  // SIGTERM to SIGKILL
)

var (
	mathReady  = regexp.MustCompile(`mcp-math listening name=\S+ addr=(\S+)`)
	agentReady = regexp.MustCompile(`msg=http_server_started addr=(\S+)`)
)

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
// short health check interval, so a dead member is noticed in seconds.
var configTemplate = template.Must(template.New("config").Parse(`# Recipe 04 (failover), from dataplane/config/testdata/recipes/04-failover.yaml,
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

// agent is a running hangar-agent serving Streamable HTTP.
type agent struct {
	proc *proc.Process
	addr string
}

// startAgent starts hangar-agent with the fleet file at configPath; its log
// lines go through filter.
func startAgent(bin, configPath string, filter *logFilter) (*agent, error) {
	p, err := proc.Start(proc.Spec{
		Name:  "hangar-agent",
		Path:  filepath.Join(bin, "hangar-agent"),
		Args:  []string{"--config", configPath, "serve", "--http", "--port", "0"},
		Ready: agentReady,
		Echo:  filter,
	}, startTimeout)
	if err != nil {
		return nil, err
	}
	return &agent{proc: p, addr: p.Ready()}, nil
}

// url is the agent's MCP endpoint.
func (a *agent) url() string { return "http://" + a.addr + "/mcp" }

// waitLog waits up to timeout for an agent log line matching re (lines
// already printed count).
func (a *agent) waitLog(ctx context.Context, re string, timeout time.Duration, what string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := a.proc.WaitFor(ctx, regexp.MustCompile(re)); err != nil {
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return err
		}
		return fmt.Errorf("%s did not happen: the agent logged no line matching %q within %s", what, re, timeout)
	}
	return nil
}

// shownEvents are the agent log events the demo shows as they happen.
var shownEvents = map[string]bool{
	"failover": true, "failback": true, "active_member_changed": true,
	"member_removed_from_rotation": true, "member_added_to_rotation": true,
	"health_check_failed": true, "mcp_server_degraded": true, "mcp_server_recovered": true,
	"circuit_opened": true, "circuit_half_open": true, "circuit_closed": true,
	"retry_budget_exhausted": true,
}

// slogLine splits a slog text line into level, event name and the rest.
var slogLine = regexp.MustCompile(`^time=\S+ level=(\S+) msg=(\S+) ?(.*)$`)

// maxLogLine caps a shown log line, so long error texts stay on one line.
const maxLogLine = 150

// maxProbeFailuresShown caps the health_check_failed lines shown for a
// member in a row (until it recovers): a dead member fails a probe a second.
const maxProbeFailuresShown = 3

var serverAttr = regexp.MustCompile(`mcp_server=(\S+)`)

// logFilter receives the agent's output (as proc's Echo) and prints the
// failover-related events, and every error, compactly. all prints every
// line instead. It is safe for concurrent use.
type logFilter struct {
	out *console
	all bool

	mu            sync.Mutex
	buf           []byte
	probeFailures map[string]int // health_check_failed lines in a row, by member
}

func (f *logFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		// proc's Echo prefixes each line with "  [name] ".
		if _, rest, ok := strings.Cut(line, "] "); ok {
			line = rest
		}
		f.show(line)
	}
	return len(p), nil
}

func (f *logFilter) show(line string) {
	m := slogLine.FindStringSubmatch(line)
	if m != nil && !f.all && f.quiet(m[2], m[3]) {
		return
	}
	switch {
	case m != nil && (shownEvents[m[2]] || m[1] == "ERROR" || f.all):
		line = fmt.Sprintf("%-4s %s %s", m[1], m[2], m[3])
	case f.all:
	default:
		return
	}
	f.out.say("  agent log: %s", shorten(strings.TrimSpace(line)))
}

// quiet reports whether to hide a repeated health_check_failed line,
// announcing the first one it hides.
func (f *logFilter) quiet(event, attrs string) bool {
	sm := serverAttr.FindStringSubmatch(attrs)
	if sm == nil {
		return false
	}
	if f.probeFailures == nil {
		f.probeFailures = map[string]int{}
	}
	switch event {
	case "mcp_server_recovered":
		delete(f.probeFailures, sm[1])
	case "health_check_failed":
		f.probeFailures[sm[1]]++
		n := f.probeFailures[sm[1]]
		if n == maxProbeFailuresShown+1 {
			f.out.say("  agent log: (further health_check_failed lines for %s are not shown)", sm[1])
		}
		return n > maxProbeFailuresShown
	}
	return false
}

// shorten cuts a line to maxLogLine characters. An error attribute keeps
// its end, where the cause is ("connect: connection refused").
func shorten(line string) string {
	if len(line) <= maxLogLine {
		return line
	}
	const key = ` error="`
	if i := strings.Index(line, key); i >= 0 {
		head, val := line[:i+len(key)], line[i+len(key):]
		if keep := maxLogLine - len(head) - 3; keep >= 20 {
			tail := val[len(val)-keep:]
			if j := strings.IndexByte(tail, ' '); j >= 0 && j < len(tail)/2 {
				tail = tail[j+1:] // start at a word
			}
			return head + "..." + tail
		}
	}
	return line[:maxLogLine-3] + "..."
}
