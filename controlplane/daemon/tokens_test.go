package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAgentTokens(t *testing.T) {
	const adminTok = "admin-token-0123456789"
	tests := []struct {
		name, file string
		want       map[string]string
		err        string
	}{
		{"two agents", "# agents\nedge-1 token-of-edge-1-0123\n\nedge-2   token-of-edge-2-0123\n",
			map[string]string{"edge-1": "token-of-edge-1-0123", "edge-2": "token-of-edge-2-0123"}, ""},
		{"short token", "edge-1 short\n", nil, ":1: the token of \"edge-1\" must be at least 16 characters"},
		{"one field", "edge-1\n", nil, ":1: want \"AGENT_ID TOKEN\""},
		{"shared token", "edge-1 token-of-edge-1-0123\nedge-2 token-of-edge-1-0123\n", nil, ":2: agent \"edge-2\" has the token of agent \"edge-1\""},
		{"listed twice", "edge-1 token-of-edge-1-0123\nedge-1 token-of-edge-1-4567\n", nil, ":2: agent \"edge-1\" is listed twice"},
		{"operator's token", "edge-1 " + adminTok + "\n", nil, "an operator's token"},
		{"empty", "# nothing\n", nil, "lists no agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agents")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readAgentTokens(path, adminTok, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			for id, tok := range tt.want {
				if got[id] != tok {
					t.Errorf("%s: %q, want %q", id, got[id], tok)
				}
			}
		})
	}
}
