package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hangarmesh/hangar/internal/testutil"
)

// The agent's front door as a user meets it: the seed's piped stdio session,
// config and flag errors, HTTP security, hangar_call's batch semantics, the
// front_door tool listing, subprocess members, metrics and the management
// tools. Real hangar-agent and mcp-math processes; helpers are prefixed fd.

// fdSeedFleet is the failover recipe with the members at %s and %s.
const fdSeedFleet = `mcp_servers:
  my-mcp:        {mode: remote, endpoint: %s, health_check_interval_s: 30,
                  max_consecutive_failures: 3, http: {connect_timeout: 10.0, read_timeout: 30.0}}
  my-mcp-backup: {mode: remote, endpoint: %s}
  my-mcp-group:
    mode: group
    strategy: priority
    min_healthy: 1
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
    members: [{id: my-mcp, priority: 1}, {id: my-mcp-backup, priority: 2}]
`

// fdResult is one result of hangar_call with every documented field.
type fdResult struct {
	Index     *int            `json:"index"`
	CallID    string          `json:"call_id"`
	Success   bool            `json:"success"`
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	ErrorType *string         `json:"error_type"`
	ElapsedMS *float64        `json:"elapsed_ms"`
	Member    string          `json:"mcp_server_used"`
}

// fdVErr is one of hangar_call's validation_errors.
type fdVErr struct {
	Index   *int   `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// fdBatchAnswer is hangar_call's answer.
type fdBatchAnswer struct {
	isError          bool
	BatchID          string     `json:"batch_id"`
	Success          bool       `json:"success"`
	Total            int        `json:"total"`
	Succeeded        int        `json:"succeeded"`
	Failed           int        `json:"failed"`
	ElapsedMS        float64    `json:"elapsed_ms"`
	Results          []fdResult `json:"results"`
	ValidationErrors []fdVErr   `json:"validation_errors"`
}

func fdCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fdBatch calls hangar_call with args and decodes its answer.
func fdBatch(t *testing.T, cs *mcp.ClientSession, args any) fdBatchAnswer {
	t.Helper()
	res, err := cs.CallTool(fdCtx(t, 60*time.Second), &mcp.CallToolParams{Name: "hangar_call", Arguments: args})
	if err != nil {
		t.Fatalf("hangar_call: %v", err)
	}
	var b fdBatchAnswer
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("decode hangar_call answer %s: %v", data, err)
	}
	b.isError = res.IsError
	return b
}

// fdCall is one call of a batch.
func fdCall(target, tool string, a, b float64) map[string]any {
	return map[string]any{"mcp_server": target, "tool": tool, "arguments": map[string]any{"a": a, "b": b}}
}

// fdNum returns structuredContent.result of an upstream CallToolResult.
func fdNum(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var r struct {
		SC struct {
			Result *float64 `json:"result"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.SC.Result == nil {
		t.Fatalf("no numeric result in %s (%v)", raw, err)
	}
	return *r.SC.Result
}

func fdStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// fdText returns the text content of a tool result.
func fdText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// fdTool calls a tool directly (front door or management) and returns its
// result and structured content as a map.
func fdTool(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	res, err := cs.CallTool(fdCtx(t, 30*time.Second), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var sc map[string]any
	data, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(data, &sc)
	return res, sc
}

// fdToolNames lists the agent's tools.
func fdToolNames(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	res, err := cs.ListTools(fdCtx(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	out := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

// fdState is a server's state in hangar_details.
func fdState(t *testing.T, cs *mcp.ClientSession, id string) string {
	t.Helper()
	_, sc := fdTool(t, cs, "hangar_details", map[string]any{"mcp_server": id})
	s, _ := sc["state"].(string)
	return s
}

// fdRun runs hangar-agent to completion (it is expected to exit by itself)
// with env as its whole environment.
func fdRun(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("hangar-agent %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

// fdEnv is the environment without the variables that name a fleet file.
func fdEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_") && !strings.HasPrefix(kv, "HANGAR_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// fdResponse is a JSON-RPC response read from the agent's stdout.
type fdResponse struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// fdPipe runs `hangar-agent --config cfg serve` (stdio) with session piped to
// its stdin, keeps stdin open until the responses with ids 1..last arrive
// (in any order: requests run concurrently), then
// closes it and checks that the agent exits 0. It returns the responses by
// id and what the agent logged.
func fdPipe(t *testing.T, cfg, session string, last int) (map[int]fdResponse, string) {
	t.Helper()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	cmd := exec.Command(agentBin, "--config", cfg, "serve")
	cmd.Stdin = stdinR
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr testutil.LogBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	if _, err := io.WriteString(stdinW, session); err != nil {
		t.Fatal(err)
	}

	answers := map[int]fdResponse{}
	timeout := time.After(30 * time.Second)
	for len(answers) < last {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stdout closed before the answer %d; stderr:\n%s", last, stderr.String())
			}
			var r fdResponse
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("stdout carries a line that is not JSON-RPC: %q", line)
			}
			if r.ID != 0 {
				answers[r.ID] = r
			}
		case <-timeout:
			t.Fatalf("no answer %d after 30 s; answers %v; stderr:\n%s", last, answers, stderr.String())
		}
	}
	stdinW.Close() // the pipe ends

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("hangar-agent exited with %v after stdin closed, want 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("hangar-agent still running 15 s after stdin closed; stderr:\n%s", stderr.String())
	}
	return answers, stderr.String()
}

// 1. The seed's piped stdio session, verbatim.
func TestStdioSeedSession(t *testing.T) {
	skipShort(t)
	p := startMath(t, "my-mcp", "")
	b := startMath(t, "my-mcp-backup", "")
	cfg := writeConfig(t, fmt.Sprintf(fdSeedFleet, p.URL(), b.URL()))

	// What `printf '...' | mcp-hangar serve` sends.
	answers, logs := fdPipe(t, cfg, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"seed","version":"1.0"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hangar_call","arguments":{"calls":[{"mcp_server":"my-mcp-group","tool":"add","arguments":{"a":1,"b":2}}]}}}
`, 2)

	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct {
			Name string `json:"name"`
		} `json:"serverInfo"`
	}
	if err := json.Unmarshal(answers[1].Result, &init); err != nil || init.ProtocolVersion != "2024-11-05" || init.ServerInfo.Name != "hangar-agent" {
		t.Errorf("initialize answer = %s (error %s), want protocolVersion 2024-11-05 from hangar-agent", answers[1].Result, answers[1].Error)
	}
	var call struct {
		IsError           bool          `json:"isError"`
		StructuredContent fdBatchAnswer `json:"structuredContent"`
	}
	if err := json.Unmarshal(answers[2].Result, &call); err != nil {
		t.Fatalf("call answer %s: %v", answers[2].Result, err)
	}
	bt := call.StructuredContent
	if call.IsError || !bt.Success || len(bt.Results) != 1 || !bt.Results[0].Success {
		t.Fatalf("call answer = %s (error %s), want one successful result", answers[2].Result, answers[2].Error)
	}
	if got := fdNum(t, bt.Results[0].Result); got != 3 {
		t.Errorf("add(1, 2) = %v, want 3", got)
	}
	if bt.Results[0].Member != "my-mcp" {
		t.Errorf("served by %q, want the primary my-mcp", bt.Results[0].Member)
	}
	if !strings.Contains(logs, "agent_stopped") {
		t.Errorf("no agent_stopped log line on stderr:\n%s", logs)
	}
}

// 5c. A stdio client that lists tools right after starting the agent (as
// desktop clients do, or a piped session) already sees the front-door tools.
func TestFrontDoorStdioFirstList(t *testing.T) {
	skipShort(t)
	m := startMath(t, "m1", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s}
  math: {mode: group, tool_access: {mode: front_door}, members: [{id: m1}]}
`, m.URL()))
	answers, _ := fdPipe(t, cfg, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"desktop","version":"1.0"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/list"}
{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}
`, 3)
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	_ = json.Unmarshal(answers[2].Result, &list)
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "add") || !slices.Contains(names, "hangar_call") {
		t.Errorf("first tools/list = %v (error %s), want the group's add beside hangar_call", names, answers[2].Error)
	}
	var call struct {
		IsError bool `json:"isError"`
		SC      struct {
			Result float64 `json:"result"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(answers[3].Result, &call); err != nil || call.IsError || call.SC.Result != 3 {
		t.Errorf("first add(1, 2) = %s (error %s), want 3", answers[3].Result, answers[3].Error)
	}
}

// 2. A broken fleet file or no fleet file: exit 1, a message that says what
// and where, nothing started.
func TestBrokenConfigRefused(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(broken, []byte(`mcp_servers:
  my-mcp:
    mode: remote
    endpoint: http://127.0.0.1:1/mcp
    max_consecutive_failure: 3
  my-mcp-group:
    mode: group
    strategy: priority
    members: [{id: my-mcp, priority: 1}, {id: my-mcpp, priority: 2}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	wantBroken := []string{
		"nothing was started",
		broken + `:5: mcp_servers.my-mcp: unknown key "max_consecutive_failure" (did you mean "max_consecutive_failures"?)`,
		broken + `:9: mcp_servers.my-mcp-group.members[1].id: unknown server "my-mcpp" (did you mean "my-mcp"?)`,
	}
	started := []string{"stdio_server_started", "http_server_started", "group_created", "config_loaded"}
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{name: "stdio", args: []string{"--config", broken, "serve"}, want: wantBroken},
		{name: "http", args: []string{"--config", broken, "serve", "--http", "--port", "0"}, want: wantBroken},
		{name: "MCP_CONFIG", env: []string{"MCP_CONFIG=" + broken}, args: []string{"serve", "--http", "--port", "0"}, want: wantBroken},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml"), "serve"},
			want: []string{"nothing was started", filepath.Join(dir, "nope.yaml"), "no such file"}},
		{name: "no fleet file anywhere", args: []string{"serve"}, want: []string{"--config", "MCP_CONFIG"}},
		{name: "bad flag value", args: []string{"--config", broken, "serve", "--log-level", "loud"}, want: []string{"--log-level", "debug, info, warn or error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir() // no ~/.config/mcp-hangar/config.yaml either
			stdout, stderr, code := fdRun(t, t.TempDir(), fdEnv(append(tt.env, "HOME="+home)...), tt.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			for _, s := range started {
				if strings.Contains(stderr, s) {
					t.Errorf("stderr logs %s although the agent must not start:\n%s", s, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing (it carries the MCP protocol)", stdout)
			}
		})
	}
}

// fdRawMCP speaks Streamable HTTP by hand, to send requests a client SDK
// would not: wrong Host, a foreign Origin, no token.
type fdRawMCP struct {
	url     string
	session string
}

// post sends one JSON-RPC message; mod may change the request.
func (r *fdRawMCP) post(t *testing.T, body string, mod func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if r.session != "" {
		req.Header.Set("Mcp-Session-Id", r.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	if mod != nil {
		mod(req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST %s: %v", r.url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

const (
	fdInitialize  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	fdInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
)

// open initializes a session.
func (r *fdRawMCP) open(t *testing.T, mod func(*http.Request)) {
	t.Helper()
	code, body, h := r.post(t, fdInitialize, mod)
	if code != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	r.session = h.Get("Mcp-Session-Id")
	if code, body, _ := r.post(t, fdInitialized, mod); code != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", code, body)
	}
}

// 3. HTTP security: no unauthenticated non-loopback bind, bearer tokens,
// DNS rebinding and cross-origin protection.
func TestHTTPSecurity(t *testing.T) {
	skipShort(t)
	m := startMath(t, "my-mcp", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  my-mcp: {mode: remote, endpoint: %s}
  math: {mode: group, tool_access: {mode: front_door}, members: [{id: my-mcp}]}
`, m.URL()))
	addCall := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hangar_call","arguments":{"calls":[{"mcp_server":"my-mcp","tool":"add","arguments":{"a":1,"b":2}}]}}}`
	frontDoorAdd := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}`

	t.Run("non-loopback bind without a token is refused", func(t *testing.T) {
		for _, host := range []string{"0.0.0.0", "::"} {
			stdout, stderr, code := fdRun(t, t.TempDir(), fdEnv("HOME="+t.TempDir()),
				"--config", cfg, "serve", "--http", "--host", host, "--port", "0")
			if code != 1 || stdout != "" {
				t.Errorf("--host %s: exit %d, stdout %q; want exit 1 and nothing", host, code, stdout)
			}
			for _, w := range []string{"refusing", "--auth-token-file", "--unsafe-no-auth"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("--host %s: stderr does not say %q:\n%s", host, w, stderr)
				}
			}
			if strings.Contains(stderr, "http_server_started") {
				t.Errorf("--host %s: the server started:\n%s", host, stderr)
			}
		}
		// MCP_HTTP_HOST is the same setting.
		_, stderr, code := fdRun(t, t.TempDir(), fdEnv("HOME="+t.TempDir(), "MCP_HTTP_HOST=0.0.0.0"),
			"--config", cfg, "serve", "--http", "--port", "0")
		if code != 1 || !strings.Contains(stderr, "--unsafe-no-auth") {
			t.Errorf("MCP_HTTP_HOST=0.0.0.0: exit %d, stderr:\n%s", code, stderr)
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		const token = "s3cret-token-0123456789"
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a := startAgent(t, cfg, "--host", "0.0.0.0", "--auth-token-file", tokenFile)
		_, port, err := net.SplitHostPort(a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		url := "http://127.0.0.1:" + port + "/mcp"
		raw := &fdRawMCP{url: url}
		for name, auth := range map[string]string{"none": "", "wrong": "Bearer wrong-token-0123456789", "basic": "Basic " + token} {
			code, body, h := raw.post(t, fdInitialize, func(r *http.Request) {
				if auth != "" {
					r.Header.Set("Authorization", auth)
				}
			})
			if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s token: %d %q (WWW-Authenticate %q), want 401 asking for a bearer token", name, code, body, h.Get("WWW-Authenticate"))
			}
		}
		// The official client with the token works end to end.
		hc := &http.Client{Transport: fdBearer{token: token, base: http.DefaultTransport}}
		c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		cs, err := c.Connect(fdCtx(t, 10*time.Second), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatalf("connect with the token: %v", err)
		}
		defer cs.Close()
		r, err := callOne(fdCtx(t, 20*time.Second), cs, "my-mcp", "add", map[string]any{"a": 1, "b": 2})
		if err != nil || !r.Success {
			t.Fatalf("call with the token: %+v, %v", r, err)
		}
		// Rotating the token file needs no restart: the old token is
		// refused at once, the new one works.
		const rotated = "rotated-token-0123456789"
		if err := os.WriteFile(tokenFile, []byte(rotated+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for tok, want := range map[string]int{token: http.StatusUnauthorized, rotated: http.StatusOK} {
			code, body, _ := raw.post(t, fdInitialize, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			if code != want {
				t.Errorf("after rotating the token file, initialize with %s: %d %q, want %d", tok, code, body, want)
			}
		}
		// Health stays open for probes; metrics need the token.
		for _, path := range []string{"/health/live", "/health/ready"} {
			if code, _ := fdGet(t, "http://127.0.0.1:"+port+path); code != http.StatusOK {
				t.Errorf("GET %s without a token: %d, want 200", path, code)
			}
		}
		if code, _ := fdGet(t, "http://127.0.0.1:"+port+"/metrics"); code != http.StatusUnauthorized {
			t.Errorf("GET /metrics without a token: %d, want 401", code)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/metrics", nil)
		rotatedClient := &http.Client{Transport: fdBearer{token: rotated, base: http.DefaultTransport}}
		if resp, err := rotatedClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET /metrics with the rotated token: %v, %v; want 200", resp, err)
		} else {
			resp.Body.Close()
		}
	})

	t.Run("DNS rebinding and cross-origin requests are rejected", func(t *testing.T) {
		a := startAgent(t, cfg)
		raw := &fdRawMCP{url: a.URL()}
		raw.open(t, nil)
		// A first front-door call, so the group's tools are known and
		// served by the front door's own path.
		if code, body, _ := raw.post(t, frontDoorAdd, nil); code != http.StatusOK || !strings.Contains(body, `"result":3`) {
			t.Fatalf("front-door add: %d %s", code, body)
		}
		before := m.Stats().TotalCalls
		bad := map[string]func(*http.Request){
			"Host evil.example":           func(r *http.Request) { r.Host = "evil.example" },
			"Host evil.example with port": func(r *http.Request) { r.Host = "evil.example:" + strings.Split(a.Addr, ":")[1] },
			"Origin evil.example":         func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
			"Sec-Fetch-Site cross-site":   func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
			"Origin evil, same-site fetch": func(r *http.Request) {
				r.Header.Set("Origin", "http://evil.example")
				r.Header.Set("Sec-Fetch-Site", "same-site")
			},
		}
		for name, mod := range bad {
			for _, call := range []string{addCall, frontDoorAdd} {
				if code, body, _ := raw.post(t, call, mod); code != http.StatusForbidden {
					t.Errorf("%s: %s: %d %q, want 403", name, call, code, body)
				}
			}
			// A new session cannot be opened that way either.
			if code, body, _ := (&fdRawMCP{url: a.URL()}).post(t, fdInitialize, mod); code != http.StatusForbidden {
				t.Errorf("%s initialize: %d %q, want 403", name, code, body)
			}
		}
		if got := m.Stats().TotalCalls; got != before {
			t.Fatalf("rejected requests reached the upstream: %d calls, want %d", got, before)
		}
		// The same request from the agent's own origin goes through.
		code, body, _ := raw.post(t, addCall, func(r *http.Request) { r.Header.Set("Origin", "http://"+a.Addr) })
		if code != http.StatusOK || !strings.Contains(body, `"success":true`) {
			t.Fatalf("same-origin call: %d %s", code, body)
		}
		code, body, _ = raw.post(t, frontDoorAdd, nil)
		if code != http.StatusOK || !strings.Contains(body, `"result":3`) {
			t.Fatalf("front-door add: %d %s", code, body)
		}
		if got := m.Stats().TotalCalls; got != before+2 {
			t.Errorf("upstream calls = %d, want %d", got, before+2)
		}
	})
}

type fdBearer struct {
	token string
	base  http.RoundTripper
}

func (b fdBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func fdGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(fdCtx(t, 10*time.Second), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// 4. hangar_call's batch semantics over HTTP.
func TestHangarCallBatch(t *testing.T) {
	skipShort(t)
	const latency = 500 * time.Millisecond
	fast := startMath(t, "fast", "")
	slow := startMath(t, "slow", "", "--latency", latency.String())
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  fast: {mode: remote, endpoint: %s}
  slow: {mode: remote, endpoint: %s}
  grp:
    mode: group
    strategy: priority
    members: [{id: fast}]
`, fast.URL(), slow.URL()))
	a := startAgent(t, cfg)
	cs := a.Connect()

	t.Run("results in call order", func(t *testing.T) {
		b := fdBatch(t, cs, map[string]any{"max_concurrency": 6, "calls": []any{
			fdCall("slow", "power", 2, 10), // answers last
			fdCall("grp", "add", 1, 2),
			fdCall("fast", "subtract", 10, 4),
			fdCall("grp", "multiply", 3, 5),
			fdCall("fast", "divide", 1, 0), // a tool error
			map[string]any{"mcp_server": "grp", "tool": "whoami"},
		}})
		if b.isError || b.Total != 6 || b.Succeeded != 5 || b.Failed != 1 || b.Success || len(b.Results) != 6 || b.BatchID == "" {
			t.Fatalf("batch = %+v, want 6 results, 5 succeeded, 1 failed", b)
		}
		ids := map[string]bool{}
		for i, r := range b.Results {
			if r.Index == nil || *r.Index != i || r.CallID == "" || ids[r.CallID] || r.ElapsedMS == nil {
				t.Errorf("result %d: index %v, call_id %q, elapsed_ms %v", i, r.Index, r.CallID, r.ElapsedMS)
			}
			ids[r.CallID] = true
		}
		for i, want := range map[int]float64{0: 1024, 1: 3, 2: 6, 3: 15} {
			if r := b.Results[i]; !r.Success || fdNum(t, r.Result) != want {
				t.Errorf("result %d = %+v, want %v", i, r, want)
			}
		}
		if r := b.Results[4]; r.Success || fdStr(r.ErrorType) != "ToolError" || !strings.Contains(fdStr(r.Error), "division by zero") {
			t.Errorf("divide(1, 0) = success %v, %s: %s; want a ToolError about division by zero", r.Success, fdStr(r.ErrorType), fdStr(r.Error))
		}
		if r := b.Results[5]; !r.Success || !strings.Contains(string(r.Result), `"fast"`) || r.Member != "fast" {
			t.Errorf("whoami on grp = %+v, want fast", r)
		}
	})

	t.Run("invalid batches are rejected whole", func(t *testing.T) {
		many := make([]any, 101)
		for i := range many {
			many[i] = fdCall("fast", "add", 1, 1)
		}
		one := []any{fdCall("fast", "add", 1, 1)}
		tests := []struct {
			name  string
			args  map[string]any
			index int // -1: a batch-level problem
			field string
			msg   string
		}{
			{"101 calls", map[string]any{"calls": many}, -1, "calls", "limit of 100"},
			{"max_concurrency 0", map[string]any{"calls": one, "max_concurrency": 0}, -1, "max_concurrency", "between 1 and 50"},
			{"max_concurrency 51", map[string]any{"calls": one, "max_concurrency": 51}, -1, "max_concurrency", "between 1 and 50"},
			{"timeout 0.5", map[string]any{"calls": one, "timeout": 0.5}, -1, "timeout", "between 1 and 300"},
			{"timeout 301", map[string]any{"calls": one, "timeout": 301}, -1, "timeout", "between 1 and 300"},
			{"max_attempts 11", map[string]any{"calls": one, "max_attempts": 11}, -1, "max_attempts", "between 1 and 10"},
			{"unknown server", map[string]any{"calls": []any{fdCall("fast", "add", 1, 1), fdCall("my-mcp", "add", 1, 1)}}, 1, "mcp_server", "hangar_list"},
		}
		before := fast.Stats().TotalCalls
		for _, tt := range tests {
			b := fdBatch(t, cs, tt.args)
			if !b.isError || len(b.Results) != 0 || b.Success {
				t.Errorf("%s: isError %v, %d results; want a rejected batch", tt.name, b.isError, len(b.Results))
			}
			found := false
			for _, v := range b.ValidationErrors {
				idx := -1
				if v.Index != nil {
					idx = *v.Index
				}
				found = found || (idx == tt.index && v.Field == tt.field && strings.Contains(v.Message, tt.msg))
			}
			if !found {
				t.Errorf("%s: validation_errors %+v, want index %d field %s saying %q", tt.name, b.ValidationErrors, tt.index, tt.field, tt.msg)
			}
		}
		if got := fast.Stats().TotalCalls; got != before {
			t.Errorf("rejected batches ran %d calls, want none", got-before)
		}
	})

	t.Run("per-call timeout", func(t *testing.T) {
		slowCall := fdCall("slow", "add", 1, 1)
		slowCall["timeout"] = 0.1
		b := fdBatch(t, cs, map[string]any{"calls": []any{slowCall, fdCall("fast", "add", 2, 2), fdCall("grp", "multiply", 2, 3)}})
		r := b.Results[0]
		if r.Success || fdStr(r.ErrorType) != "TimeoutError" {
			t.Fatalf("slow call = success %v, %s: %s; want a TimeoutError", r.Success, fdStr(r.ErrorType), fdStr(r.Error))
		}
		if *r.ElapsedMS < 100 || *r.ElapsedMS >= float64(latency.Milliseconds()) {
			t.Errorf("slow call took %v ms, want it cut at its 100 ms timeout, before the upstream's %v answer", *r.ElapsedMS, latency)
		}
		if !b.Results[1].Success || fdNum(t, b.Results[1].Result) != 4 || !b.Results[2].Success || fdNum(t, b.Results[2].Result) != 6 {
			t.Errorf("the other calls = %+v, want 4 and 6", b.Results[1:])
		}
		if b.Succeeded != 2 || b.Failed != 1 {
			t.Errorf("succeeded %d, failed %d; want 2, 1", b.Succeeded, b.Failed)
		}
	})

	t.Run("fail_fast", func(t *testing.T) {
		calls := []any{fdCall("fast", "add", 1, 1), fdCall("fast", "divide", 1, 0),
			fdCall("fast", "add", 1, 1), fdCall("fast", "add", 1, 1), fdCall("fast", "add", 1, 1)}
		// Without fail_fast every call runs.
		before := fast.Stats().TotalCalls
		b := fdBatch(t, cs, map[string]any{"calls": calls, "max_concurrency": 1})
		if b.Succeeded != 4 || b.Failed != 1 || fast.Stats().TotalCalls-before != 5 {
			t.Fatalf("without fail_fast: %+v, want 4 succeeded and 5 calls made", b)
		}
		before = fast.Stats().TotalCalls
		b = fdBatch(t, cs, map[string]any{"calls": calls, "max_concurrency": 1, "fail_fast": true})
		if got := fast.Stats().TotalCalls - before; got != 2 {
			t.Errorf("fail_fast made %d upstream calls, want 2 (the rest aborted)", got)
		}
		if len(b.Results) != 5 || !b.Results[0].Success || fdStr(b.Results[1].ErrorType) != "ToolError" {
			t.Fatalf("fail_fast results = %+v", b.Results)
		}
		for _, r := range b.Results[2:] {
			if r.Success || fdStr(r.ErrorType) != "FailFastAborted" || !strings.Contains(fdStr(r.Error), "not started") {
				t.Errorf("result %d = %s: %s, want FailFastAborted, not started", *r.Index, fdStr(r.ErrorType), fdStr(r.Error))
			}
		}
		if b.Success || b.Succeeded != 1 || b.Failed != 4 {
			t.Errorf("fail_fast batch: success %v, succeeded %d, failed %d; want false, 1, 4", b.Success, b.Succeeded, b.Failed)
		}
	})

	t.Run("batch timeout", func(t *testing.T) {
		calls := []any{fdCall("slow", "add", 1, 1), fdCall("slow", "add", 1, 1), fdCall("slow", "add", 1, 1), fdCall("slow", "add", 1, 1)}
		b := fdBatch(t, cs, map[string]any{"calls": calls, "max_concurrency": 1, "timeout": 1.25})
		if len(b.Results) != 4 || !b.Results[0].Success || b.Success {
			t.Fatalf("batch = %+v, want the first call done and the batch failed", b)
		}
		for _, r := range b.Results[1:] {
			if !r.Success && fdStr(r.ErrorType) != "TimeoutError" {
				t.Errorf("result %d = %s: %s, want TimeoutError", *r.Index, fdStr(r.ErrorType), fdStr(r.Error))
			}
		}
		if r := b.Results[3]; r.Success || !strings.Contains(fdStr(r.Error), "not started") {
			t.Errorf("last call = %+v %s, want not started: the batch timeout passed", r, fdStr(r.Error))
		}
		if b.ElapsedMS < 1250 || b.ElapsedMS >= float64(4*latency.Milliseconds()) {
			t.Errorf("batch took %v ms, want it ended by its 1.25 s timeout", b.ElapsedMS)
		}
	})

	t.Run("max_concurrency runs calls in parallel", func(t *testing.T) {
		calls := make([]any, 20)
		for i := range calls {
			calls[i] = fdCall("slow", "add", float64(i), 1)
		}
		start := time.Now()
		b := fdBatch(t, cs, map[string]any{"calls": calls, "max_concurrency": 5})
		elapsed := time.Since(start)
		if b.Succeeded != 20 {
			t.Fatalf("batch = %+v, want 20 successes", b)
		}
		for i, r := range b.Results {
			if fdNum(t, r.Result) != float64(i+1) {
				t.Errorf("result %d = %s, want %d", i, r.Result, i+1)
			}
		}
		// 5 at a time: 4 waves of one latency; one at a time would take 20.
		if elapsed < 4*latency || elapsed > 10*latency {
			t.Errorf("20 calls of %v with max_concurrency 5 took %v, want between %v and %v", latency, elapsed, 4*latency, 10*latency)
		}
	})
}

// 5. Front door: a front_door group's tools are ordinary MCP tools that fail over.
func TestFrontDoorTools(t *testing.T) {
	skipShort(t)
	m1 := startMath(t, "m1", "")
	m2 := startMath(t, "m2", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s}
  m2: {mode: remote, endpoint: %s}
  math:
    mode: group
    strategy: priority
    tool_access: {mode: front_door}
    members: [{id: m1, priority: 1}, {id: m2, priority: 2}]
`, m1.URL(), m2.URL()))
	a := startAgent(t, cfg)
	cs := a.Connect()

	// The first tools/list, right after the agent started, has them.
	tools := fdToolNames(t, cs)
	for _, n := range []string{"add", "subtract", "multiply", "divide", "power", "whoami", "append"} {
		if tools[n] == nil {
			t.Errorf("tools/list lacks the group's %s", n)
		}
	}
	for _, n := range []string{"hangar_call", "hangar_list", "hangar_status", "hangar_details", "hangar_tools", "hangar_health", "hangar_group_list"} {
		if tools[n] == nil {
			t.Errorf("management tool %s is missing beside the front-door tools", n)
		}
	}
	add := tools["add"]
	if add == nil {
		t.FailNow()
	}
	schema, _ := json.Marshal(add.InputSchema)
	if !strings.Contains(string(schema), `"a"`) || add.Annotations == nil || !add.Annotations.ReadOnlyHint {
		t.Errorf("add is not the upstream's definition: schema %s, annotations %+v", schema, add.Annotations)
	}

	call := func(name string, args any) (*mcp.CallToolResult, map[string]any) {
		res, sc := fdTool(t, cs, name, args)
		if res.IsError {
			t.Fatalf("%s: isError: %s", name, fdText(res))
		}
		return res, sc
	}
	if res, sc := call("add", map[string]any{"a": 2, "b": 40}); sc["result"] != 42.0 || fdText(res) != "42" {
		t.Errorf("add(2, 40) = %v %q, want 42", sc, fdText(res))
	}
	if _, sc := call("whoami", nil); sc["name"] != "m1" {
		t.Errorf("whoami = %v, want the primary m1", sc)
	}
	// A tool's own error comes back as the upstream's isError result.
	if res, _ := fdTool(t, cs, "divide", map[string]any{"a": 1, "b": 0}); !res.IsError || !strings.Contains(fdText(res), "division by zero") {
		t.Errorf("divide(1, 0) = isError %v %q, want the upstream's tool error", res.IsError, fdText(res))
	}

	m1.Kill()
	if _, sc := call("whoami", nil); sc["name"] != "m2" {
		t.Errorf("whoami after the primary died = %v, want the backup m2", sc)
	}
	if _, sc := call("add", map[string]any{"a": 2, "b": 40}); sc["result"] != 42.0 {
		t.Errorf("add(2, 40) after failover = %v, want 42", sc)
	}
	if tools := fdToolNames(t, cs); tools["add"] == nil {
		t.Error("add vanished from tools/list after the primary died")
	}
}

// 5b. Front-door name collisions get the group as a prefix.
func TestFrontDoorNameCollision(t *testing.T) {
	skipShort(t)
	m1 := startMath(t, "m1", "")
	m2 := startMath(t, "m2", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s}
  m2: {mode: remote, endpoint: %s}
  g1: {mode: group, tool_access: {mode: front_door}, members: [{id: m1}]}
  g2: {mode: group, tool_access: {mode: front_door}, members: [{id: m2}]}
  g3: {mode: group, members: [{id: m1}]}
`, m1.URL(), m2.URL()))
	a := startAgent(t, cfg)
	cs := a.Connect()
	tools := fdToolNames(t, cs)
	if tools["g1__add"] == nil || tools["g2__add"] == nil {
		t.Errorf("tools/list lacks g1__add or g2__add")
	}
	for name := range tools {
		if name == "add" || strings.HasPrefix(name, "g3__") || (!strings.HasPrefix(name, "hangar_") && !strings.HasPrefix(name, "g1__") && !strings.HasPrefix(name, "g2__")) {
			t.Errorf("unexpected tool %q (collisions must be prefixed; egress groups list nothing)", name)
		}
	}
	for g, want := range map[string]string{"g1": "m1", "g2": "m2"} {
		res, sc := fdTool(t, cs, g+"__whoami", nil)
		if res.IsError || sc["name"] != want {
			t.Errorf("%s__whoami = %v %q, want %s", g, sc, fdText(res), want)
		}
		if res, sc := fdTool(t, cs, g+"__add", map[string]any{"a": 1, "b": 2}); res.IsError || sc["result"] != 3.0 {
			t.Errorf("%s__add = %v %q, want 3", g, sc, fdText(res))
		}
	}
}

// fdChildren lists the child processes of pid.
func fdChildren(t *testing.T, pid int) []int {
	t.Helper()
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, s := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(s); err == nil && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// fdSubFleet is a fleet with the subprocess member child (mcp-math on
// stdio) plus extra entries or child keys.
func fdSubFleet(extra string) string {
	return fmt.Sprintf(`mcp_servers:
  child:
    mode: subprocess
    command: [%q]
    env: {MCP_TRANSPORT: stdio, MCP_NAME: child}
%s`, mathBin, extra)
}

// fdWhoamiChild calls whoami on child through hangar_call.
func fdWhoamiChild(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	r, err := callOne(fdCtx(t, 30*time.Second), cs, "child", "whoami", nil)
	if err != nil || !r.Success || !strings.Contains(string(r.Result), `"child"`) {
		t.Fatalf("whoami on the child = %+v, %v", r, err)
	}
}

// fdOnlyChild returns the agent's one child process, an mcp-math.
func fdOnlyChild(t *testing.T, a *Agent) int {
	t.Helper()
	kids := fdChildren(t, a.proc.PID())
	if len(kids) != 1 {
		t.Fatalf("agent has children %v, want one mcp-math", kids)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", kids[0]))
	if exe != mathBin {
		t.Fatalf("child %d runs %q, want %q", kids[0], exe, mathBin)
	}
	return kids[0]
}

// 6. A subprocess member is started on first use and restarted after a crash.
func TestSubprocessMemberRestart(t *testing.T) {
	skipShort(t)
	a := startAgent(t, writeConfig(t, fdSubFleet("")))
	cs := a.Connect()
	if st := fdState(t, cs, "child"); st != "cold" {
		t.Errorf("state before first use = %q, want cold", st)
	}
	if kids := fdChildren(t, a.proc.PID()); len(kids) != 0 {
		t.Fatalf("children before first use: %v", kids)
	}
	fdWhoamiChild(t, cs)
	pid := fdOnlyChild(t, a)
	if st := fdState(t, cs, "child"); st != "ready" {
		t.Errorf("state after a call = %q, want ready", st)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the killed child reaped", func() bool {
		return !slices.Contains(fdChildren(t, a.proc.PID()), pid)
	})
	fdWhoamiChild(t, cs) // the first call after the crash already works
	if again := fdOnlyChild(t, a); again == pid {
		t.Errorf("child pid %d unchanged after the kill", again)
	}
}

// 6b. With idle_ttl_s the child is stopped when idle, and started again on use.
func TestSubprocessMemberIdleStop(t *testing.T) {
	skipShort(t)
	a := startAgent(t, writeConfig(t, fdSubFleet("    idle_ttl_s: 1\n")))
	cs := a.Connect()
	fdWhoamiChild(t, cs)
	pid := fdOnlyChild(t, a)
	start := time.Now()
	eventually(t, 10*time.Second, "the idle child stopped (idle_ttl_s: 1)", func() bool {
		return len(fdChildren(t, a.proc.PID())) == 0 && fdState(t, cs, "child") == "cold"
	})
	t.Logf("idle child %d stopped %v after its last use", pid, time.Since(start).Round(time.Millisecond))
	fdWhoamiChild(t, cs)
	fdOnlyChild(t, a)
}

// 6c. A front_door group of subprocess members lists their tools too.
func TestSubprocessFrontDoorTools(t *testing.T) {
	skipShort(t)
	a := startAgent(t, writeConfig(t, fdSubFleet("  math: {mode: group, tool_access: {mode: front_door}, members: [{id: child}]}\n")))
	cs := a.Connect()
	eventually(t, 10*time.Second, "the child's add on tools/list", func() bool {
		return fdToolNames(t, cs)["add"] != nil
	})
	res, sc := fdTool(t, cs, "add", map[string]any{"a": 1, "b": 2})
	if res.IsError || sc["result"] != 3.0 {
		t.Errorf("add(1, 2) = %v %q, want 3", sc, fdText(res))
	}
}

// fdScrape parses the agent's /metrics.
func fdScrape(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := fdGet(t, "http://"+a.Addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// fdValue returns the value of the sample of mf with labels (nil: absent).
func fdValue(mf *dto.MetricFamily, labels map[string]string) *float64 {
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		return &v
	}
	return nil
}

// 7. Metrics with MCP Hangar's names and labels; health endpoints.
func TestMetricsAndHealthEndpoints(t *testing.T) {
	skipShort(t)
	m1 := startMath(t, "m1", "")
	m2 := startMath(t, "m2", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s, health_check_interval_s: 0.5, http: {connect_timeout: 1.0}}
  m2: {mode: remote, endpoint: %s, health_check_interval_s: 0.5}
  grp:
    mode: group
    strategy: priority
    members: [{id: m1, priority: 1}, {id: m2, priority: 2}]
`, m1.URL(), m2.URL()))
	a := startAgent(t, cfg)
	for _, path := range []string{"/health/live", "/health/ready"} {
		if code, body := fdGet(t, "http://"+a.Addr+path); code != http.StatusOK || !strings.Contains(body, "status") {
			t.Errorf("GET %s = %d %q, want 200", path, code, body)
		}
	}
	cs := a.Connect()
	for range 3 {
		if r, err := callOne(fdCtx(t, 20*time.Second), cs, "grp", "add", map[string]any{"a": 1, "b": 2}); err != nil || !r.Success {
			t.Fatalf("add on grp: %+v, %v", r, err)
		}
	}
	// A failover and a failback, so every metric has samples.
	m1.Kill()
	if r, err := callOne(fdCtx(t, 20*time.Second), cs, "grp", "whoami", nil); err != nil || r.Member != "m2" {
		t.Fatalf("whoami after killing m1: %+v, %v", r, err)
	}
	eventually(t, 15*time.Second, "m1 degraded", func() bool { return fdState(t, cs, "m1") == "degraded" })
	if r, err := callOne(fdCtx(t, 20*time.Second), cs, "grp", "whoami", nil); err != nil || r.Member != "m2" {
		t.Fatalf("whoami while m1 is degraded: %+v, %v", r, err)
	}
	m1.Restart()
	eventually(t, 30*time.Second, "failback to m1", func() bool {
		r, err := callOne(fdCtx(t, 20*time.Second), cs, "grp", "whoami", nil)
		return err == nil && r.Member == "m1"
	})

	mfs := fdScrape(t, a)
	tests := []struct {
		name   string
		labels []string // the sample's label names, sorted
		sample map[string]string
		min    float64
	}{
		{"mcp_hangar_mcp_server_state", []string{"mcp_server"}, map[string]string{"mcp_server": "m2"}, 2},
		{"mcp_hangar_circuit_breaker_state", []string{"mcp_server", "state"}, map[string]string{"mcp_server": "grp", "state": "closed"}, 1},
		{"mcp_hangar_tool_calls_total", []string{"group", "mcp_server", "status", "tool"}, map[string]string{"group": "grp", "mcp_server": "m1", "tool": "add", "status": "success"}, 3},
		{"mcp_hangar_tool_call_duration_seconds", []string{"group", "mcp_server", "tool"}, map[string]string{"group": "grp", "mcp_server": "m1", "tool": "add"}, 3},
		{"mcp_hangar_health_checks_total", []string{"mcp_server", "result"}, map[string]string{"mcp_server": "m1", "result": "unhealthy"}, 1},
		{"mcp_hangar_attempts_total", []string{"group", "mcp_server", "outcome"}, map[string]string{"group": "grp", "mcp_server": "m1", "outcome": "connect_error"}, 1},
		{"mcp_hangar_group_member_in_rotation", []string{"group", "member"}, map[string]string{"group": "grp", "member": "m2"}, 1},
		{"mcp_hangar_group_active_member", []string{"group", "member"}, map[string]string{"group": "grp", "member": "m1"}, 1},
		{"mcp_hangar_group_failovers_total", []string{"from", "group", "reason", "to"}, map[string]string{"group": "grp", "from": "m1", "to": "m2"}, 1},
		{"mcp_hangar_group_failbacks_total", []string{"group", "to"}, map[string]string{"group": "grp", "to": "m1"}, 1},
	}
	for _, tt := range tests {
		mf := mfs[tt.name]
		if mf == nil {
			t.Errorf("/metrics has no %s", tt.name)
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", tt.name)
		}
		var names []string
		for _, lp := range mf.Metric[0].Label {
			names = append(names, lp.GetName())
		}
		if !slices.Equal(names, tt.labels) {
			t.Errorf("%s labels = %v, want %v", tt.name, names, tt.labels)
		}
		if v := fdValue(mf, tt.sample); v == nil || *v < tt.min {
			t.Errorf("%s%v = %v, want at least %v", tt.name, tt.sample, v, tt.min)
		}
	}
	// mcp_server is the member that served, as MCP Hangar labels it: the
	// three adds on m1, the whoami calls after the failover on m2.
	calls := mfs["mcp_hangar_tool_calls_total"]
	if v := fdValue(calls, map[string]string{"group": "grp", "mcp_server": "m1", "tool": "add", "status": "success"}); v == nil || *v != 3 {
		t.Errorf("tool_calls_total{group=grp,mcp_server=m1,add,success} = %v, want exactly the 3 calls made", v)
	}
	if v := fdValue(calls, map[string]string{"mcp_server": "m2", "tool": "add"}); v != nil {
		t.Errorf("tool_calls_total{mcp_server=m2,add} = %v, want none: m2 served no add", *v)
	}
	if v := fdValue(calls, map[string]string{"group": "grp", "mcp_server": "m2", "tool": "whoami", "status": "success"}); v == nil || *v < 2 {
		t.Errorf("tool_calls_total{group=grp,mcp_server=m2,whoami,success} = %v, want at least the 2 calls m2 served after the failover", v)
	}
	if v := fdValue(calls, map[string]string{"mcp_server": "grp"}); v != nil {
		t.Errorf("tool_calls_total{mcp_server=grp} = %v, want none: mcp_server names a member, group the group", *v)
	}
}

// 8. The management tools' documented fields.
func TestManagementTools(t *testing.T) {
	skipShort(t)
	m1 := startMath(t, "m1", "")
	m2 := startMath(t, "m2", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s, description: first}
  m2: {mode: remote, endpoint: %s}
  grp:
    mode: group
    description: both
    strategy: priority
    members: [{id: m1, priority: 1}, {id: m2, priority: 2, weight: 3}]
`, m1.URL(), m2.URL()))
	a := startAgent(t, cfg)
	cs := a.Connect()
	// Ready and probed: a session opens (ready) a moment before the probe
	// that opened it records its check.
	checked := func(id string) bool {
		_, sc := fdTool(t, cs, "hangar_details", map[string]any{"mcp_server": id})
		h, _ := sc["health"].(map[string]any)
		return sc["state"] == "ready" && h["last_check"] != nil
	}
	eventually(t, 15*time.Second, "m1 and m2 ready and probed", func() bool { return checked("m1") && checked("m2") })
	get := func(tool string, args any, out any) {
		t.Helper()
		res, err := cs.CallTool(fdCtx(t, 10*time.Second), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", tool, err, res)
		}
		data, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: decode %s: %v", tool, data, err)
		}
		if text := fdText(res); !json.Valid([]byte(text)) {
			t.Errorf("%s: text content is not the JSON answer: %q", tool, text)
		}
	}
	type server struct {
		ID           string  `json:"mcp_server"`
		Mode         string  `json:"mode"`
		State        string  `json:"state"`
		Alive        bool    `json:"alive"`
		ToolsCount   int     `json:"tools_count"`
		HealthStatus string  `json:"health_status"`
		Description  string  `json:"description"`
		LastCheck    *string `json:"last_check"`
	}
	type groupEntry struct {
		ID           string `json:"group_id"`
		State        string `json:"state"`
		Strategy     string `json:"strategy"`
		HealthyCount int    `json:"healthy_count"`
		TotalMembers int    `json:"total_members"`
	}

	t.Run("hangar_list", func(t *testing.T) {
		var l struct {
			Servers []server        `json:"mcp_servers"`
			Groups  []groupEntry    `json:"groups"`
			Runtime json.RawMessage `json:"runtime_mcp_servers"`
		}
		get("hangar_list", nil, &l)
		if len(l.Servers) != 2 || len(l.Groups) != 1 || string(l.Runtime) != "[]" {
			t.Fatalf("hangar_list = %+v", l)
		}
		s := l.Servers[0]
		if s.ID != "m1" || s.Mode != "remote" || s.State != "ready" || !s.Alive || s.ToolsCount != 7 || s.HealthStatus != "healthy" || s.Description != "first" || s.LastCheck == nil {
			t.Errorf("m1 entry = %+v", s)
		}
		if g := l.Groups[0]; g != (groupEntry{"grp", "healthy", "priority", 2, 2}) {
			t.Errorf("grp entry = %+v", g)
		}
		var f struct {
			Servers []server `json:"mcp_servers"`
		}
		get("hangar_list", map[string]any{"state_filter": "degraded"}, &f)
		if len(f.Servers) != 0 {
			t.Errorf("state_filter degraded lists %+v", f.Servers)
		}
	})

	t.Run("hangar_status", func(t *testing.T) {
		var st struct {
			Formatted string `json:"formatted"`
			Summary   struct {
				Healthy int     `json:"healthy_mcp_servers"`
				Total   int     `json:"total_mcp_servers"`
				Uptime  string  `json:"uptime"`
				Seconds float64 `json:"uptime_seconds"`
			} `json:"summary"`
			Servers []struct {
				ID, Indicator, State string
			} `json:"mcp_servers"`
		}
		get("hangar_status", nil, &st)
		for _, w := range []string{"[READY] m1 (remote, 7 tools)", "[READY] m2 (remote, 7 tools)",
			"[HEALTHY] grp (group priority, 2/2 in rotation, breaker closed, active m1)"} {
			if !strings.Contains(st.Formatted, w) {
				t.Errorf("formatted status lacks %q:\n%s", w, st.Formatted)
			}
		}
		if st.Summary.Healthy != 2 || st.Summary.Total != 2 || st.Summary.Uptime == "" {
			t.Errorf("summary = %+v", st.Summary)
		}
	})

	t.Run("hangar_details", func(t *testing.T) {
		var s struct {
			ID     string `json:"mcp_server"`
			State  string `json:"state"`
			Mode   string `json:"mode"`
			Alive  bool   `json:"alive"`
			Tools  []struct{ Name, Description string }
			Health struct {
				ConsecutiveFailures int  `json:"consecutive_failures"`
				LastCheckOK         bool `json:"last_check_ok"`
			} `json:"health"`
		}
		get("hangar_details", map[string]any{"mcp_server": "m2"}, &s)
		if s.ID != "m2" || s.State != "ready" || s.Mode != "remote" || !s.Alive || len(s.Tools) != 7 || !s.Health.LastCheckOK {
			t.Errorf("hangar_details m2 = %+v", s)
		}
		var g struct {
			ID          string `json:"group_id"`
			Description string `json:"description"`
			State       string `json:"state"`
			Strategy    string `json:"strategy"`
			MinHealthy  int    `json:"min_healthy"`
			Available   bool   `json:"is_available"`
			Breaker     string `json:"circuit_breaker_state"`
			Active      string `json:"active_member"`
			Members     []struct {
				ID         string `json:"id"`
				State      string `json:"state"`
				InRotation bool   `json:"in_rotation"`
				Priority   int    `json:"priority"`
				Weight     int    `json:"weight"`
			} `json:"members"`
		}
		get("hangar_details", map[string]any{"mcp_server": "grp"}, &g)
		if g.ID != "grp" || g.Description != "both" || g.State != "healthy" || g.Strategy != "priority" || g.MinHealthy != 1 ||
			!g.Available || g.Breaker != "closed" || g.Active != "m1" || len(g.Members) != 2 {
			t.Fatalf("hangar_details grp = %+v", g)
		}
		if m := g.Members[1]; m.ID != "m2" || m.Priority != 2 || m.Weight != 3 || !m.InRotation || m.State != "ready" {
			t.Errorf("member m2 = %+v", m)
		}
	})

	t.Run("hangar_tools", func(t *testing.T) {
		for _, id := range []string{"m1", "grp"} {
			var tl struct {
				ID    string `json:"mcp_server"`
				Group bool   `json:"group"`
				Tools []struct {
					Name        string          `json:"name"`
					InputSchema json.RawMessage `json:"inputSchema"`
				} `json:"tools"`
			}
			get("hangar_tools", map[string]any{"mcp_server": id}, &tl)
			var names []string
			for _, tool := range tl.Tools {
				names = append(names, tool.Name)
				if len(tool.InputSchema) == 0 {
					t.Errorf("%s: tool %s has no inputSchema", id, tool.Name)
				}
			}
			if tl.ID != id || tl.Group != (id == "grp") || !slices.Contains(names, "add") || len(names) != 7 {
				t.Errorf("hangar_tools %s = %s %v %v", id, tl.ID, tl.Group, names)
			}
		}
	})

	t.Run("hangar_health", func(t *testing.T) {
		var h struct {
			Status  string `json:"status"`
			Servers struct {
				Total   int            `json:"total"`
				ByState map[string]int `json:"by_state"`
			} `json:"mcp_servers"`
			Groups struct {
				Total          int `json:"total"`
				TotalMembers   int `json:"total_members"`
				HealthyMembers int `json:"healthy_members"`
			} `json:"groups"`
		}
		get("hangar_health", nil, &h)
		if h.Status != "healthy" || h.Servers.Total != 2 || h.Servers.ByState["ready"] != 2 || h.Groups.Total != 1 || h.Groups.HealthyMembers != 2 || h.Groups.TotalMembers != 2 {
			t.Errorf("hangar_health = %+v", h)
		}
	})

	t.Run("hangar_group_list", func(t *testing.T) {
		var gl struct {
			Groups []struct {
				ID      string            `json:"group_id"`
				State   string            `json:"state"`
				Members []json.RawMessage `json:"members"`
			} `json:"groups"`
		}
		get("hangar_group_list", nil, &gl)
		if len(gl.Groups) != 1 || gl.Groups[0].ID != "grp" || gl.Groups[0].State != "healthy" || len(gl.Groups[0].Members) != 2 {
			t.Errorf("hangar_group_list = %+v", gl)
		}
	})

	t.Run("unknown server", func(t *testing.T) {
		for _, tool := range []string{"hangar_details", "hangar_tools"} {
			res, err := cs.CallTool(fdCtx(t, 10*time.Second), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"mcp_server": "nope"}})
			var msg string
			switch {
			case err != nil:
				msg = err.Error()
			case res.IsError:
				msg = fdText(res)
			default:
				t.Errorf("%s nope succeeded: %+v", tool, res.StructuredContent)
				continue
			}
			if !strings.Contains(msg, "nope") || !strings.Contains(msg, "hangar_list") {
				t.Errorf("%s nope: %q, want it to name the id and hangar_list", tool, msg)
			}
		}
	})
}
