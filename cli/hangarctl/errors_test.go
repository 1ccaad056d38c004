package hangarctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusedRequests checks that the control plane's refusals reach the
// user as its own message on stderr, with exit code 1 and no usage dump.
func TestRefusedRequests(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("groups:\n  my-mcp-group:\n    strategy: fastest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOnly := tokenFile(t, "read-only")
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unknown group", []string{"group", "status", "nope"},
			`hangarctl: group "nope" not found (groups: my-mcp-group, search)`},
		{"unknown server", []string{"server", "status", "nope"}, `hangarctl: server "nope" not found`},
		{"unknown member", []string{"--token-file", tokenFile(t, adminToken), "member", "drain", "my-mcp-group", "nope"},
			`hangarctl: group "my-mcp-group" has no member "nope"`},
		{"invalid config names file and line", []string{"--token-file", tokenFile(t, adminToken), "config", "apply", "-f", bad},
			"hangarctl: " + bad + `:3: groups.my-mcp-group.strategy: unknown strategy "fastest" (want priority, round_robin or weighted)`},
		{"permission denied with a read-only token", []string{"--token-file", readOnly, "member", "drain", "my-mcp-group", "my-mcp"},
			"hangarctl: permission denied: DrainMember needs admin rights; this caller may only read " +
				"(this request needs other rights: check --token-file or --cert-file)"},
		{"permission denied without a token", []string{"breaker", "reset", "search"},
			"hangarctl: permission denied: ResetBreaker needs admin rights; this caller may only read " +
				"(this request needs other rights: check --token-file or --cert-file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startFake(t)
			r := run(t, "", append([]string{"--control-plane", addr}, tt.args...)...)
			if r.code != ExitUserError || r.stderr != tt.wantStderr+"\n" || r.stdout != "" {
				t.Errorf("got exit %d, stdout %q, stderr:\n%s\nwant exit 1, no stdout, stderr:\n%s", r.code, r.stdout, r.stderr, tt.wantStderr)
			}
		})
	}
}

// TestConfigApplyFromStdin checks that -f - sends standard input, named
// <stdin> in the control plane's messages.
func TestConfigApplyFromStdin(t *testing.T) {
	f, addr := startFake(t)
	const fleet = "groups:\n  my-mcp-group:\n    strategy: round_robin\n"
	r := run(t, fleet, "--control-plane", addr, "--token-file", tokenFile(t, adminToken), "config", "apply", "-f", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "+++ <stdin>\n") || !strings.HasSuffix(r.stdout, "applied: revision 8\n") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	f.mu.Lock()
	got := f.applied
	f.mu.Unlock()
	if len(got) != 1 || string(got[0].GetConfig()) != fleet || got[0].GetName() != "<stdin>" || got[0].GetDryRun() {
		t.Fatalf("ApplyConfig got %v, want the stdin text named <stdin>", got)
	}

	r = run(t, "groups:\n  g:\n    strategy: fastest\n", "--control-plane", addr, "config", "apply", "--dry-run", "-f", "-")
	want := "hangarctl: <stdin>:3: groups.my-mcp-group.strategy: unknown strategy \"fastest\" (want priority, round_robin or weighted)\n"
	if r.code != ExitUserError || r.stderr != want {
		t.Fatalf("invalid stdin: exit %d, stderr %q, want 1, %q", r.code, r.stderr, want)
	}
}

// TestUnreachable checks exit code 2 and a message naming every endpoint
// tried, and that an endpoint that answers is found after dead ones.
func TestUnreachable(t *testing.T) {
	dead1, dead2 := deadAddr(t), deadAddr(t)
	r := run(t, "", "--control-plane", dead1+","+dead2, "group", "list")
	want := "hangarctl: cannot reach the control plane at " + dead1 + ", " + dead2 + ": connection refused " +
		"(is hangar-controlplane running? set --control-plane or HANGAR_CONTROL_PLANE)\n"
	if r.code != ExitUnreachable || r.stderr != want || r.stdout != "" {
		t.Errorf("got exit %d, stderr:\n%s\nwant exit 2, stderr:\n%s", r.code, r.stderr, want)
	}

	_, addr := startFake(t)
	t.Run("repeated flag", func(t *testing.T) {
		r := run(t, "", "--control-plane", dead1, "--control-plane", addr, "group", "status", "my-mcp-group")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Group: my-mcp-group") {
			t.Errorf("exit %d, stdout %q, stderr %q: want the status from the second endpoint", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(EnvControlPlane, dead1+", "+addr)
		r := run(t, "", "events", "--follow=false")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
			t.Errorf("exit %d, stdout %q, stderr %q: want 3 events from the second endpoint", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("stream", func(t *testing.T) {
		r := run(t, "", "--control-plane", dead1+","+dead2, "events")
		if r.code != ExitUnreachable || !strings.Contains(r.stderr, dead1+", "+dead2+": connection refused") {
			t.Errorf("exit %d, stderr %q: want 2 naming both endpoints", r.code, r.stderr)
		}
	})
}

// TestUsageErrors checks that mistakes on the command line exit 1 with one
// short message, a pointer to --help and no usage dump.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unknown flag", []string{"group", "list", "--bogus"},
			"hangarctl: unknown flag: --bogus\nRun 'hangarctl group list --help' for usage."},
		{"missing argument", []string{"member", "drain", "my-mcp-group"},
			"hangarctl: \"hangarctl member drain\" wants GROUP MEMBER, got 1 argument(s)\nRun 'hangarctl member drain --help' for usage."},
		{"unknown command", []string{"group", "frobnicate"},
			"hangarctl: unknown command \"frobnicate\" for \"hangarctl group\"\nRun 'hangarctl group --help' for usage."},
		{"bad output format", []string{"-o", "xml", "group", "list"}, `hangarctl: --output "xml": want table, json or yaml`},
		{"apply without a file", []string{"config", "apply"}, `hangarctl: required flag(s) "filename" not set`},
		{"missing file", []string{"config", "apply", "-f", "/nonexistent/fleet.yaml"}, "hangarctl: -f /nonexistent/fleet.yaml: no such file"},
		{"plaintext off loopback", []string{"--control-plane", "10.1.2.3:7400", "group", "list"},
			"hangarctl: refusing plaintext to the control plane at 10.1.2.3:7400: pass --ca-file (TLS), or --insecure to accept the risk"},
		{"endpoint without port", []string{"--control-plane", "cp.internal", "group", "list"},
			`hangarctl: --control-plane "cp.internal": want HOST:PORT, e.g. 127.0.0.1:7400`},
		{"cert without key", []string{"--cert-file", "c.pem", "group", "list"}, "hangarctl: --cert-file and --key-file go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", tt.args...)
			if r.code != ExitUserError || r.stderr != tt.wantStderr+"\n" || r.stdout != "" {
				t.Errorf("got exit %d, stdout %q, stderr:\n%s\nwant exit 1, stderr:\n%s", r.code, r.stdout, r.stderr, tt.wantStderr)
			}
		})
	}
}

// TestCompletion checks that completion bash prints a script without
// needing a control plane.
func TestCompletion(t *testing.T) {
	r := run(t, "", "--control-plane", deadAddr(t), "completion", "bash")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# bash completion V2 for hangarctl") || !strings.Contains(r.stdout, "__start_hangarctl") {
		t.Fatalf("exit %d, stderr %q, stdout starts %.80q: want a bash completion script", r.code, r.stderr, r.stdout)
	}
}

// TestCompleteNames checks that group names complete from the control plane.
func TestCompleteNames(t *testing.T) {
	_, addr := startFake(t)
	r := run(t, "", "__complete", "--control-plane", addr, "member", "drain", "my-mcp-group", "")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "my-mcp\nmy-mcp-backup\nmy-mcp-old\n:4\n") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want the group's members", r.code, r.stdout, r.stderr)
	}
}
