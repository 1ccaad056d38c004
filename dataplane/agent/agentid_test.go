package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultAgentID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	id, persisted, err := defaultAgentID(dir, "Edge Host.example")
	if err != nil || !persisted {
		t.Fatalf("first start: %q, %v, %v", id, persisted, err)
	}
	if !strings.HasPrefix(id, "Edge-Host.example-") || !validAgentID.MatchString(id) {
		t.Errorf("id %q: want the host name, a dash and a random suffix", id)
	}
	again, _, err := defaultAgentID(dir, "Edge Host.example")
	if err != nil || again != id {
		t.Errorf("restart: %q, %v; want the kept id %q", again, err, id)
	}
	other, _, _ := defaultAgentID(filepath.Join(t.TempDir(), "state"), "Edge Host.example")
	if other == id {
		t.Errorf("a second agent on the host got the same id %q", id)
	}
	if err := os.WriteFile(filepath.Join(dir, agentIDFile), []byte("bad id/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := defaultAgentID(dir, "h"); err == nil || !strings.Contains(err.Error(), "--agent-id") {
		t.Errorf("a corrupt id file: %v; want an error saying how to fix it", err)
	}
	if id, persisted, _ := defaultAgentID("", "h"); persisted || !strings.HasPrefix(id, "h-") {
		t.Errorf("no state dir: %q, persisted %v", id, persisted)
	}
}
