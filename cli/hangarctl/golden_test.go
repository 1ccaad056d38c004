package hangarctl

import (
	"os"
	"strings"
	"testing"
)

// exitCodes are the golden commands that do not exit 0: a dry run with a
// diff exits 1, as kubectl diff.
var exitCodes = map[string]int{"config_apply_dry_run": ExitDiff}

// TestGolden checks every command's output in every format it is asked in
// against testdata/NAME.FORMAT.golden.
func TestGolden(t *testing.T) {
	const fleet = "groups:\n  my-mcp-group:\n    strategy: round_robin\n"
	tests := []struct {
		name    string
		args    []string
		admin   bool // send the admin token
		formats []string
	}{
		{"group_list", []string{"group", "list"}, false, nil},
		{"group_status", []string{"group", "status", "my-mcp-group"}, false, []string{"yaml"}},
		{"group_status_open", []string{"group", "status", "search"}, false, nil},
		{"server_list", []string{"server", "list"}, false, nil},
		{"server_status", []string{"server", "status", "my-mcp"}, false, nil},
		{"agent_list", []string{"agent", "list"}, false, nil},
		{"cluster_status", []string{"cluster", "status"}, false, nil},
		{"config_get", []string{"config", "get"}, false, []string{"yaml"}},
		{"config_apply", []string{"config", "apply", "-f", "fleet.yaml"}, true, nil},
		{"config_apply_dry_run", []string{"config", "apply", "-f", "fleet.yaml", "--dry-run"}, false, nil},
		{"events", []string{"events"}, false, []string{"yaml"}},
		{"events_filtered", []string{"events", "--group", "my-mcp-group", "--limit", "1"}, false, nil},
		{"member_drain", []string{"member", "drain", "my-mcp-group", "my-mcp"}, true, nil},
		{"member_undrain", []string{"member", "undrain", "my-mcp-group", "my-mcp"}, true, nil},
		{"breaker_reset", []string{"breaker", "reset", "search"}, true, nil},
		{"version", []string{"version"}, false, []string{"yaml"}},
	}
	for _, tt := range tests {
		for _, format := range append([]string{"table", "json"}, tt.formats...) {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				t.Chdir(t.TempDir())
				if err := os.WriteFile("fleet.yaml", []byte(fleet), 0o644); err != nil {
					t.Fatal(err)
				}
				_, addr := startFake(t)
				args := []string{"--control-plane", addr, "-o", format}
				if tt.admin {
					args = append(args, "--token-file", tokenFile(t, adminToken))
				}
				r := run(t, "", append(args, tt.args...)...)
				if want := exitCodes[tt.name]; r.code != want || r.stderr != "" {
					t.Fatalf("hangarctl %s: exit %d, stderr %q", strings.Join(tt.args, " "), r.code, r.stderr)
				}
				golden(t, tt.name+"."+format, r.stdout)
			})
		}
	}
}

// TestDryRunExitCode: `config apply --dry-run` exits 3 when the file
// differs from the stored config, 0 when it does not and 1 when it is
// invalid, so a script can gate on it; only the invalid file prints an error.
func TestDryRunExitCode(t *testing.T) {
	_, addr := startFake(t)
	for _, tc := range []struct {
		fleet string
		want  int
	}{
		{"groups:\n  my-mcp-group:\n    strategy: round_robin\n", ExitDiff},
		{"# unchanged\ngroups:\n  my-mcp-group:\n    strategy: priority\n", ExitOK},
		{"groups:\n  g:\n    strategy: fastest\n", ExitUserError},
	} {
		r := run(t, tc.fleet, "--control-plane", addr, "config", "apply", "--dry-run", "-f", "-")
		if r.code != tc.want || (r.stderr != "") != (tc.want == ExitUserError) {
			t.Errorf("dry run of %q: exit %d, stderr %q; want exit %d and no error", tc.fleet, r.code, r.stderr, tc.want)
		}
	}
}
