package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns promtool's path or fails with how to install it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `make ops-tools` (scripts/install-promtool.sh installs Debian's prometheus package)")
	}
	return p
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheusRules checks the rules with promtool, runs the unit tests
// built from real scrapes (e2e/TestOpsRulesOnRealScrapes writes them), and
// checks that every alert has a runbook entry and a test where it fires.
func TestPrometheusRules(t *testing.T) {
	pt := promtool(t)
	if out, err := exec.Command(pt, "check", "rules", "prometheus/rules.yaml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob("prometheus/tests/*.yaml")
	if len(tests) == 0 {
		t.Fatal("no promtool tests in prometheus/tests")
	}
	cmd := exec.Command(pt, append([]string{"test", "rules"}, relative(tests, "prometheus/tests")...)...)
	cmd.Dir = "prometheus/tests"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	var rf rulesFile
	data, err := os.ReadFile("prometheus/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, f := range tests {
		var tf struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		raw, _ := os.ReadFile(f)
		if err := yaml.Unmarshal(raw, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				}
			}
		}
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/runbook.md"+anchor) {
				t.Errorf("alert %s: runbook_url %q does not point at docs/runbook.md%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !strings.Contains(string(runbook), "\n## "+r.Alert+"\n") {
				t.Errorf("alert %s has no \"## %s\" section in docs/runbook.md", r.Alert, r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("alert %s fires in no test of prometheus/tests", r.Alert)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
		}
	}
	for _, seed := range []string{"MCPHangarCircuitBreakerOpen", "MCPHangarProviderDegraded"} {
		if !fires[seed] {
			t.Errorf("MCP Hangar's alert %s is not shipped and tested", seed)
		}
	}
	if alerts == 0 {
		t.Fatal("rules.yaml has no alerts")
	}
}

func relative(paths []string, dir string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i], _ = filepath.Rel(dir, p)
	}
	return out
}

// TestGrafanaDashboardQueriesParse parses every query of the dashboard
// with promtool; e2e/TestOpsRulesOnRealScrapes also checks the metric
// names against real scrapes.
func TestGrafanaDashboardQueriesParse(t *testing.T) {
	pt := promtool(t)
	data, err := os.ReadFile("grafana/hangar-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("hangar-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			q, _ := json.Marshal(vars.Replace(tg.Expr))
			fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", n, q)
			n++
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no queries")
	}
	path := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, out)
	}
}
