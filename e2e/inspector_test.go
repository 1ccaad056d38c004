package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

// TestInspectorOneShotStdioAgent: the MCP Inspector's one-shot CLI starts
// the agent on stdio, lists its tools and calls one, as a newcomer would.
func TestInspectorOneShotStdioAgent(t *testing.T) {
	skipShort(t)
	tl, err := thirdparty.Find()
	if err != nil {
		t.Fatal(err)
	}
	m := startMath(t, "m1", "")
	cfg := writeConfig(t, fmt.Sprintf("mcp_servers:\n  m1: {mode: remote, endpoint: %s}\n", m.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	agent := []string{agentBin, "--config", cfg, "serve"}
	out, err := tl.Inspector(ctx, t.TempDir(), agent, "--method", "tools/list")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("tools/list output is not JSON (%v):\n%s", err, out)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "hangar_call") || !slices.Contains(names, "hangar_list") {
		t.Errorf("the Inspector saw tools %v, want hangar_call and hangar_list", names)
	}
	out, err = tl.Inspector(ctx, t.TempDir(), agent, "--method", "tools/call", "--tool-name", "hangar_list")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		IsError           bool `json:"isError"`
		StructuredContent struct {
			Servers []struct {
				ID string `json:"mcp_server"`
			} `json:"mcp_servers"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.IsError {
		t.Fatalf("hangar_list through the Inspector: %v\n%s", err, out)
	}
	if len(res.StructuredContent.Servers) != 1 || res.StructuredContent.Servers[0].ID != "m1" {
		t.Errorf("hangar_list through the Inspector: %s, want the one server m1", out)
	}
}
