package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// accessLine is a line of the agent's --access-log.
type accessLine struct {
	Time      time.Time `json:"time"`
	Session   string    `json:"session"`
	Target    string    `json:"target"`
	Group     string    `json:"group"`
	Member    string    `json:"mcp_server"`
	Tool      string    `json:"tool"`
	Outcome   string    `json:"outcome"`
	Attempts  int       `json:"attempts"`
	LatencyMS *float64  `json:"latency_ms"`
	ErrorType string    `json:"error_type"`
}

// The agent's --access-log writes one JSON line per call, through the front
// door and hangar_call, with the member that served after a failover, and a
// failed call's outcome and error type.
func TestAccessLog(t *testing.T) {
	skipShort(t)
	m1 := startMath(t, "m1", "")
	m2 := startMath(t, "m2", "")
	// Probes too slow to notice m1's death: the call after it fails over.
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  m1: {mode: remote, endpoint: %s, health_check_interval_s: 60, http: {connect_timeout: 1.0}}
  m2: {mode: remote, endpoint: %s, health_check_interval_s: 60}
  math:
    mode: group
    strategy: priority
    tool_access: {mode: front_door}
    members: [{id: m1, priority: 1}, {id: m2, priority: 2}]
`, m1.URL(), m2.URL()))
	logPath := filepath.Join(t.TempDir(), "access.jsonl")
	a := startAgent(t, cfg, "--access-log", logPath)
	cs := a.Connect()

	if res, sc := fdTool(t, cs, "add", map[string]any{"a": 2, "b": 40}); res.IsError || sc["result"] != 42.0 {
		t.Fatalf("add through the front door: %v %q", sc, fdText(res))
	}
	if r, err := callOne(fdCtx(t, 20*time.Second), cs, "m2", "add", map[string]any{"a": 1, "b": 2}); err != nil || !r.Success {
		t.Fatalf("hangar_call on m2: %+v, %v", r, err)
	}
	m1.Kill()
	if res, sc := fdTool(t, cs, "whoami", nil); res.IsError || sc["name"] != "m2" {
		t.Fatalf("whoami after killing m1: %v %q, want m2", sc, fdText(res))
	}
	if r, err := callOne(fdCtx(t, 20*time.Second), cs, "m1", "add", map[string]any{"a": 1, "b": 2}); err != nil || r.Success {
		t.Fatalf("hangar_call on the dead m1: %+v, %v; want a failed call", r, err)
	}

	lines := readAccessLog(t, logPath)
	want := []accessLine{
		{Target: "math", Group: "math", Member: "m1", Tool: "add", Outcome: "ok", Attempts: 1},
		{Target: "m2", Member: "m2", Tool: "add", Outcome: "ok", Attempts: 1},
		{Target: "math", Group: "math", Member: "m2", Tool: "whoami", Outcome: "ok", Attempts: 2},
		{Target: "m1", Member: "m1", Tool: "add", Outcome: "connect_error", Attempts: 1, ErrorType: "ConnectionError"},
	}
	var calls []accessLine
	for _, l := range lines {
		if l.Tool == "add" || l.Tool == "whoami" {
			calls = append(calls, l)
		}
	}
	if len(calls) != len(want) {
		t.Fatalf("access log has %d tool call lines, want %d:\n%+v", len(calls), len(want), lines)
	}
	session := cs.ID()
	start := time.Now().Add(-5 * time.Minute)
	for i, w := range want {
		got := calls[i]
		if got.Session != session {
			t.Errorf("line %d: session %q, want the client's Mcp-Session-Id %q", i, got.Session, session)
		}
		if got.Time.Before(start) || got.Time.After(time.Now()) || got.LatencyMS == nil || *got.LatencyMS < 0 {
			t.Errorf("line %d: time %v, latency_ms %v: want now and a latency", i, got.Time, got.LatencyMS)
		}
		got.Time, got.Session, got.LatencyMS = time.Time{}, "", nil
		if got != w {
			t.Errorf("line %d = %+v\nwant      %+v", i, got, w)
		}
	}
}

func readAccessLog(t *testing.T, path string) []accessLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("access log: %v", err)
	}
	defer f.Close()
	var out []accessLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l accessLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}
