package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/admin"
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
			got, err := parseAgentTokens(path)
			if err == nil {
				err = checkTokens(admin.Tokens{Admin: adminTok, Agents: got})
			}
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

// Token files are followed: a rotated token is accepted and the old one
// refused from the next call on; a broken file, or a rotation that breaks
// a rule across files, keeps the tokens in force and is logged.
func TestTokenFilesFollowRotation(t *testing.T) {
	dir := t.TempDir()
	put := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil { // a new inode: seen as a change at once
			t.Fatal(err)
		}
		return p
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := Settings{AuthTokenFile: put("admin", "admin-token-0000000001\n"), ReadOnlyTokenFile: put("ro", "read-only-token-00000001\n"),
		AgentTokensFile: put("agents", "edge-1 agent-token-000000001\n")}
	tf, err := openTokens(s, log)
	if err != nil {
		t.Fatal(err)
	}
	authz := admin.Authorizer{Current: tf.Current}
	call := func(tok string) error {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
		_, err := authz.UnaryInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/hangar.v1.AdminService/ListGroups"},
			func(context.Context, any) (any, error) { return nil, nil })
		return err
	}
	if err := call("admin-token-0000000001"); err != nil {
		t.Fatalf("the admin token at start: %v", err)
	}

	put("admin", "admin-token-0000000002\n")
	if err := call("admin-token-0000000002"); err != nil {
		t.Errorf("the rotated admin token: %v, want accepted", err)
	}
	if err := call("admin-token-0000000001"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the old admin token after rotation: %v, want Unauthenticated", err)
	}

	put("admin", "short\n")
	if err := call("admin-token-0000000002"); err != nil || !strings.Contains(logs.String(), "at least 16 characters") {
		t.Errorf("after a bad write: %v; logs:\n%s\nwant the last good token kept and the reason logged", err, logs.String())
	}
	// The read-only file takes the admin token: refused as a whole.
	put("admin", "admin-token-0000000003\n")
	put("ro", "admin-token-0000000003\n")
	if err := call("admin-token-0000000002"); err != nil {
		t.Errorf("after a rotation that gives two roles one token: %v, want the previous tokens kept", err)
	}
	if n := strings.Count(logs.String(), "read-only-token-file holds the admin token"); n != 1 {
		t.Errorf("the refused combination logged %d times, want once:\n%s", n, logs.String())
	}
	put("ro", "read-only-token-00000002\n")
	if err := call("admin-token-0000000003"); err != nil {
		t.Errorf("once the files agree again: %v, want the new admin token accepted", err)
	}
}
