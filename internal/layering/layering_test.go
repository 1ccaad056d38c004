package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hangarmesh/hangar/"

func TestLayering(t *testing.T) {
	rules := []struct {
		pattern   string   // the packages checked
		forbidden []string // import path prefixes none of them may depend on
	}{
		{module + "dataplane/...", []string{module + "controlplane", module + "cli", "go.etcd.io/"}},
		{module + "controlplane/...", []string{module + "dataplane", module + "cli"}},
		{module + "cli/...", []string{module + "controlplane", module + "dataplane"}},
		{module + "internal/...", []string{module + "controlplane", module + "dataplane", module + "cli"}},
	}
	for _, r := range rules {
		t.Run(r.pattern, func(t *testing.T) {
			for pkg, deps := range depsOf(t, r.pattern) {
				for _, d := range deps {
					for _, f := range r.forbidden {
						if strings.HasPrefix(d, f) {
							t.Errorf("%s depends on %s: the planes may meet only through proto/ and internal/fleetfile", pkg, d)
						}
					}
				}
			}
		})
	}
}

// depsOf returns, for each package matching pattern, its transitive deps.
func depsOf(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pattern, err, out)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(line, "go: warning") {
			continue
		}
		deps[f[0]] = f[1:]
	}
	return deps
}

// TestLayeringSeesDataplane proves the check has something to check: a dataplane
// package must have deps listed, or the rule above would pass vacuously.
func TestLayeringSeesDataplane(t *testing.T) {
	deps := depsOf(t, module+"dataplane/...")
	if len(deps[module+"dataplane/router"]) == 0 {
		t.Fatalf("go list found no deps for dataplane/router; the layering check would pass vacuously: %v", deps)
	}
}
