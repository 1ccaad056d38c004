package thirdparty_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

// tooling returns the installed third-party tooling or fails the test with
// the command that installs it.
func tooling(t *testing.T) *thirdparty.Tooling {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tl, err := thirdparty.Find()
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func startEverything(t *testing.T, tl *thirdparty.Tooling) *thirdparty.Everything {
	t.Helper()
	e, err := tl.StartEverything()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	return e
}

// textOf returns the text contents of a tools/call result.
func textOf(t *testing.T, s thirdparty.StepResult) string {
	t.Helper()
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := s.Decode(&res); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text + "\n")
	}
	return b.String()
}

// TestClientAgainstEverything drives server-everything directly with the
// TypeScript-SDK client: every relay the front door must carry works here,
// so a failure through the agent is the agent's.
func TestClientAgainstEverything(t *testing.T) {
	tl := tooling(t)
	ev := startEverything(t, tl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const doc = "demo://resource/static/document/architecture.md"
	rep, err := tl.RunClient(ctx, thirdparty.Plan{
		URL: ev.URL(),
		Capabilities: thirdparty.Capabilities{
			Sampling:    &thirdparty.CannedReply{Reply: map[string]any{"role": "assistant", "model": "canned-model", "content": map[string]any{"type": "text", "text": "canned sample"}}},
			Elicitation: &thirdparty.CannedReply{Reply: map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}},
			Roots:       []thirdparty.Root{{URI: "file:///e2e/root", Name: "e2e-root"}},
		},
		Steps: []thirdparty.Step{
			thirdparty.ListTools(),
			thirdparty.ListResources(),
			thirdparty.ListPrompts(),
			thirdparty.SetLogLevel("debug"),
			thirdparty.CallToolWithProgress("trigger-long-running-operation", map[string]any{"duration": 0.3, "steps": 3}),
			thirdparty.CallTool("trigger-sampling-request", map[string]any{"prompt": "hello"}),
			thirdparty.CallTool("trigger-elicitation-request", nil),
			thirdparty.CallTool("get-roots-list", nil),
			thirdparty.Subscribe(doc),
			thirdparty.CallTool("toggle-subscriber-updates", nil),
			thirdparty.WaitNotification("notifications/resources/updated", 1, 10000),
			thirdparty.CallTool("toggle-simulated-logging", nil),
			thirdparty.WaitNotificationMatching("notifications/message", "-level message - SessionId", 1, 10000),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rep.Steps {
		if !s.OK {
			t.Errorf("step %d (%s) failed: %s", i, s.Op, s.Error)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if rep.SessionID == "" || !strings.Contains(string(rep.ServerInfo), "mcp-servers/everything") {
		t.Errorf("session %q, server info %s: want a session with server-everything", rep.SessionID, rep.ServerInfo)
	}
	for i, want := range []struct{ key, name string }{{"tools", "echo"}, {"resources", doc}, {"prompts", "simple-prompt"}} {
		names, err := rep.Steps[i].Names(want.key)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, want.name) {
			t.Errorf("%s: %v, want %q among them", want.key, names, want.name)
		}
	}
	if n := len(rep.Steps[4].Progress); n != 3 {
		t.Errorf("progress notifications: %d (%s), want 3", n, rep.Steps[4].Progress)
	}
	if got := textOf(t, rep.Steps[5]); !strings.Contains(got, "canned sample") {
		t.Errorf("sampling call: %q, want the client's canned answer in it", got)
	}
	if got := textOf(t, rep.Steps[6]); !strings.Contains(got, "Name: Ada") {
		t.Errorf("elicitation call: %q, want the client's canned answer in it", got)
	}
	if got := textOf(t, rep.Steps[7]); !strings.Contains(got, "file:///e2e/root") {
		t.Errorf("roots call: %q, want the client's root in it", got)
	}
	for _, m := range []string{"sampling/createMessage", "elicitation/create", "roots/list"} {
		if len(rep.ServerRequests[m]) == 0 {
			t.Errorf("the client answered no %s request", m)
		}
	}
	if up := rep.Notifications["notifications/resources/updated"]; !strings.Contains(string(up[0]), doc) {
		t.Errorf("resource update %s, want one for %s", up[0], doc)
	}
	logs := rep.Notifications["notifications/message"]
	if !slices.ContainsFunc(logs, func(m json.RawMessage) bool {
		return strings.Contains(string(m), "-level message - SessionId "+rep.SessionID)
	}) {
		t.Errorf("log notifications %s: want a simulated one for session %s", logs, rep.SessionID)
	}
}

// TestEverythingRestartForgetsSessions shows what a proxy in front of
// server-everything must handle: after a restart on the same port, an old
// session id gets HTTP 400 (not 404), and a new session works.
func TestEverythingRestartForgetsSessions(t *testing.T) {
	tl := tooling(t)
	ev := startEverything(t, tl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tl.RunClient(ctx, thirdparty.Plan{URL: ev.URL(), KeepSession: true, Steps: []thirdparty.Step{thirdparty.Ping()}})
	if err != nil {
		t.Fatal(err)
	}
	ev.Kill()
	ev, err = ev.Restart()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ev.Kill)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ev.URL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", rep.SessionID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("old session id after a restart: HTTP %d, want 400", resp.StatusCode)
	}
	if _, err := tl.RunClient(ctx, thirdparty.Plan{URL: ev.URL(), Steps: []thirdparty.Step{thirdparty.Ping()}}); err != nil {
		t.Errorf("a new session after the restart: %v", err)
	}
}

// TestInspectorCLI runs the Inspector's one-shot CLI against
// server-everything over stdio and over Streamable HTTP.
func TestInspectorCLI(t *testing.T) {
	tl := tooling(t)
	ev := startEverything(t, tl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stdio := []string{tl.Node(), tl.Path("node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "stdio"}
	out, err := tl.Inspector(ctx, t.TempDir(), stdio, "--method", "tools/list")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("inspector tools/list output is not JSON (%v):\n%s", err, out)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "echo") {
		t.Errorf("inspector over stdio listed %v, want echo among them", names)
	}
	out, err = tl.Inspector(ctx, t.TempDir(), []string{ev.URL()}, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi from inspector")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "hi from inspector") {
		t.Errorf("inspector over HTTP: echo answered %s", out)
	}
}
