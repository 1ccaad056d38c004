// Package e2e runs Hangar's end-to-end tests: real hangar-agent and mcp-math
// processes on loopback, real MCP clients, faults injected through
// mcp-math's admin API, processes killed with SIGKILL by PID.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// e2eVersion is the version stamped into the binaries under test.
const e2eVersion = "v0.0.0-e2e"

// Binaries built once by TestMain.
var (
	agentBin string
	mathBin  string
	cpBin    string
	ctlBin   string
)

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse() // testing.Short reads the flags
		if testing.Short() {
			fmt.Println("e2e: skipped in -short mode (they start real processes)")
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "hangar-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-race", "-ldflags", "-X github.com/hangarmesh/hangar/internal/version.Version="+e2eVersion, "-o", dir+"/",
			"github.com/hangarmesh/hangar/dataplane/cmd/hangar-agent",
			"github.com/hangarmesh/hangar/e2e/cmd/mcp-math",
			"github.com/hangarmesh/hangar/controlplane/cmd/hangar-controlplane",
			"github.com/hangarmesh/hangar/cli/cmd/hangarctl")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build binaries: %v\n%s", err, out)
			return 1
		}
		agentBin, mathBin = filepath.Join(dir, "hangar-agent"), filepath.Join(dir, "mcp-math")
		// The race detector sleeps 1 s when a -race binary exits; the
		// processes started here inherit this and exit at once (a race
		// report still fails the process, and so the test).
		os.Setenv("GORACE", "atexit_sleep_ms=0")
		cpBin = filepath.Join(dir, "hangar-controlplane")
		ctlBin = filepath.Join(dir, "hangarctl")
		return m.Run()
	}()
	os.Exit(code)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real processes")
	}
}

var (
	mathReady  = regexp.MustCompile(`mcp-math listening name=\S+ addr=(\S+)`)
	agentReady = regexp.MustCompile(`msg=http_server_started addr=(\S+)`)
)

// Math is a running mcp-math process.
type Math struct {
	Name  string
	Addr  string // host:port
	proc  *proc.Process
	t     *testing.T
	Admin *mathserver.AdminClient
}

// URL is the member's MCP endpoint.
func (m *Math) URL() string { return "http://" + m.Addr + "/mcp" }

// startMath starts mcp-math named name on a free loopback port (or on addr
// when not empty, to restart a member where it was). extra are more flags.
func startMath(t *testing.T, name, addr string, extra ...string) *Math {
	t.Helper()
	host, port := "127.0.0.1", "0"
	if addr != "" {
		host, port, _ = strings.Cut(addr, ":")
	}
	args := append([]string{"--name", name, "--host", host, "--port", port, "--seed", "1"}, extra...)
	var p *proc.Process
	var err error
	// A restart on a port just freed may race the kernel: retry briefly.
	for i := 0; i < 20; i++ {
		p, err = proc.Start(proc.Spec{Name: "mcp-math " + name, Path: mathBin, Args: args, Ready: mathReady}, 10*time.Second)
		if err == nil || addr == "" || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	m := &Math{Name: name, Addr: p.Ready(), proc: p, t: t}
	m.Admin = mathserver.NewAdminClient("http://" + m.Addr)
	t.Cleanup(func() { p.Kill() })
	return m
}

// Kill kills the member with SIGKILL.
func (m *Math) Kill() { m.proc.Kill() }

// Restart starts the member again on the same address.
func (m *Math) Restart(extra ...string) *Math {
	m.t.Helper()
	return startMath(m.t, m.Name, m.Addr, extra...)
}

// Stats returns the member's served-call counters.
func (m *Math) Stats() mathserver.Stats {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := m.Admin.Stats(ctx)
	if err != nil {
		m.t.Fatalf("stats of %s: %v", m.Name, err)
	}
	return st
}

// SetFaults changes the member's injected faults.
func (m *Math) SetFaults(f mathserver.Faults) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Admin.SetFaults(ctx, f); err != nil {
		m.t.Fatalf("set faults of %s: %v", m.Name, err)
	}
}

// Agent is a running hangar-agent serving HTTP.
type Agent struct {
	Addr string
	proc *proc.Process
	t    *testing.T
}

// writeConfig writes a fleet file into a temp dir and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startAgent starts hangar-agent serving HTTP on a free port with the fleet
// file at configPath.
func startAgent(t *testing.T, configPath string, extra ...string) *Agent {
	t.Helper()
	args := append([]string{"--config", configPath, "serve", "--http", "--port", "0", "--log-level", "debug"}, extra...)
	p, err := proc.Start(proc.Spec{Name: "hangar-agent", Path: agentBin, Args: args, Ready: agentReady}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{Addr: p.Ready(), proc: p, t: t}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("hangar-agent did not stop cleanly: %v\n%s", err, p.Output())
		}
		if t.Failed() {
			t.Logf("hangar-agent output:\n%s", p.Output())
		}
	})
	return a
}

// URL is the agent's MCP endpoint.
func (a *Agent) URL() string { return "http://" + a.Addr + "/mcp" }

// Logs returns what the agent logged so far.
func (a *Agent) Logs() string { return a.proc.Output() }

// WaitLog waits for a log line matching re.
func (a *Agent) WaitLog(re string, timeout time.Duration) string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, err := a.proc.WaitFor(ctx, regexp.MustCompile(re))
	if err != nil {
		a.t.Fatalf("%v\nagent output:\n%s", err, a.proc.Output())
	}
	return line
}

// Connect opens an MCP client session to the agent, closed at cleanup.
func (a *Agent) Connect() *mcp.ClientSession {
	a.t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An own transport, so that cleanup can close its unused connections:
	// the agent's graceful shutdown waits up to 5 s for a connection that
	// never sent a request (net/http's rule for StateNew connections).
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: a.URL(), HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		a.t.Fatalf("connect to the agent: %v", err)
	}
	a.t.Cleanup(func() {
		_ = cs.Close()
		hc.CloseIdleConnections()
	})
	return cs
}

// CallResult is one result of hangar_call, as the agent returns it.
type CallResult struct {
	Index     int             `json:"index"`
	Success   bool            `json:"success"`
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	ErrorType *string         `json:"error_type"`
	Member    string          `json:"mcp_server_used"`
	Attempts  int             `json:"attempts"`
}

// Batch is hangar_call's answer.
type Batch struct {
	Success          bool              `json:"success"`
	Succeeded        int               `json:"succeeded"`
	Failed           int               `json:"failed"`
	Results          []CallResult      `json:"results"`
	ValidationErrors []json.RawMessage `json:"validation_errors"`
}

// hangarCall calls hangar_call with args and decodes the batch answer.
func hangarCall(ctx context.Context, cs *mcp.ClientSession, args any) (Batch, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hangar_call", Arguments: args})
	if err != nil {
		return Batch{}, err
	}
	var b Batch
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &b); err != nil {
		return Batch{}, fmt.Errorf("decode hangar_call answer %s: %w", data, err)
	}
	return b, nil
}

// callOne calls one tool through hangar_call.
func callOne(ctx context.Context, cs *mcp.ClientSession, target, tool string, args map[string]any) (CallResult, error) {
	b, err := hangarCall(ctx, cs, map[string]any{"calls": []map[string]any{{"mcp_server": target, "tool": tool, "arguments": args}}})
	if err != nil {
		return CallResult{}, err
	}
	if len(b.Results) != 1 {
		return CallResult{}, fmt.Errorf("hangar_call returned %d results: %+v", len(b.Results), b)
	}
	return b.Results[0], nil
}

// toolJSON calls a management tool and decodes its structured answer into out.
func toolJSON(ctx context.Context, cs *mcp.ClientSession, tool string, args, out any) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return err
	}
	data, _ := json.Marshal(res.StructuredContent)
	return json.Unmarshal(data, out)
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
