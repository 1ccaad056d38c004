package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

var updateOps = flag.Bool("update-ops", false, "rewrite deploy/prometheus/tests from this run's scrapes")

// TestOpsRulesOnRealScrapes runs the shipped alert rules with promtool on
// the metrics of a real fleet (three replicas, three agents, two members)
// in each phase of an incident: healthy (no alert at all), the primary
// degraded, both members dead with the breaker open, an agent behind the
// control plane's snapshot, etcd lost, every replica lost. It also checks
// the shipped Grafana dashboard against the families the processes export.
func TestOpsRulesOnRealScrapes(t *testing.T) {
	promtool := requirePromtool(t)
	c := startControlPlane(t)
	c.startAgents(nil)
	ctx := context.Background()
	calls := func(i, n int) (failed int, circuitOpen bool) {
		for range n {
			r, err := callOne(ctx, c.sessions[i], "my-mcp-group", "add", map[string]any{"a": 1, "b": 2})
			if err != nil {
				t.Fatalf("hangar_call on agent %d: %v", i, err)
			}
			if !r.Success {
				failed++
				circuitOpen = circuitOpen || (r.ErrorType != nil && *r.ErrorType == "CircuitOpen")
			}
		}
		return failed, circuitOpen
	}
	for i := range c.agents {
		if failed, _ := calls(i, 5); failed != 0 {
			t.Fatalf("agent %d: %d of 5 calls failed on a healthy fleet", i, failed)
		}
	}
	var all []target
	scrape := func(replicas, agents bool) []target {
		var out []target
		if replicas {
			for _, r := range c.replicas {
				out = append(out, scrapeTarget(t, "hangar-controlplane", r.HTTP, "http://"+r.HTTP+"/metrics"))
			}
		}
		if agents {
			for _, a := range c.agents {
				out = append(out, scrapeTarget(t, "hangar-agent", a.Addr, "http://"+a.Addr+"/metrics"))
			}
		}
		all = append(all, out...)
		return out
	}
	perAgent := func(extra map[string]string) []expAlert {
		var out []expAlert
		for _, a := range c.agents {
			e := expAlert{"job": "hangar-agent", "instance": a.Addr}
			for k, v := range extra {
				e[k] = v
			}
			out = append(out, e)
		}
		return out
	}
	checkVersions(t, c)
	files := map[string]string{}
	rules := loadRules(t)
	var quiet []alertCase
	for name := range rules {
		quiet = append(quiet, alertCase{alert: name, evalAt: 10 * time.Minute})
	}
	sort.Slice(quiet, func(i, j int) bool { return quiet[i].alert < quiet[j].alert })
	files["healthy"] = rulesTest(t, "healthy", scrape(true, true), nil, quiet)

	// The primary's tools fail while its health checks pass: calls fail
	// over to the backup inside the call.
	c.primary.SetFaults(mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailMode: mathserver.FailRPC})
	if failed, _ := calls(0, 3); failed != 0 {
		t.Fatalf("%d of 3 calls failed while the backup was up", failed)
	}
	c.primary.SetFaults(mathserver.Faults{})

	// The primary dies: the agents assigned to probe it see it degraded
	// (and the control plane takes it out of every agent's rotation);
	// calls fail over to the backup.
	c.primary.Kill()
	eventually(t, 20*time.Second, "an agent sees the primary degraded", func() bool {
		for _, a := range c.agents {
			if v, _ := labelled(scrapeTarget(t, "", "", "http://"+a.Addr+"/metrics"), "mcp_hangar_mcp_server_state", "mcp_server", primary); v >= 3 {
				return true
			}
		}
		return false
	})
	if failed, _ := calls(0, 5); failed != 0 {
		t.Fatalf("%d of 5 calls failed with the backup up", failed)
	}
	files["member-degraded"] = rulesTest(t, "member-degraded", scrape(true, true), nil, []alertCase{
		{alert: "MCPHangarProviderDegraded", evalAt: 10 * time.Minute, want: []expAlert{{"mcp_server": primary}}},
		{alert: "MCPHangarCircuitBreakerOpen", evalAt: 10 * time.Minute},
	})

	// Both members dead: agent A's calls fail until its breaker opens and
	// rejects them.
	c.backup.Kill()
	open := false
	for range 20 {
		if _, open = calls(0, 1); open {
			break
		}
	}
	if !open {
		t.Fatal("20 calls with both members dead and agent A's breaker never rejected one with CircuitOpen")
	}
	files["breaker-open"] = rulesTest(t, "breaker-open", scrape(true, true), nil, []alertCase{
		{alert: "MCPHangarCircuitBreakerOpen", evalAt: 10 * time.Minute, want: []expAlert{{"mcp_server": "my-mcp-group"}}},
	})

	// A fleet change the agents have not applied yet: the agents' series
	// from before it, the replicas' after it.
	agentsBefore := scrape(false, true)
	before, _ := c.leader().Metric("hangar_controlplane_snapshot_version")
	changed := strings.Replace(readFile(t, c.fleet), `description: "Backup MCP server"`, `description: "Backup MCP server (changed)"`, 1)
	out, err := exec.Command(ctlBin, "--control-plane", c.replicas[0].GRPC, "config", "apply", "-f", writeConfig(t, changed)).CombinedOutput()
	if err != nil {
		t.Fatalf("hangarctl config apply: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "a new snapshot on every replica", func() bool {
		for _, r := range c.replicas {
			if v, _ := r.Metric("hangar_controlplane_snapshot_version"); v <= before {
				return false
			}
		}
		return true
	})
	files["agent-not-converged"] = rulesTest(t, "agent-not-converged", append(scrape(true, false), agentsBefore...), nil, []alertCase{
		{alert: "HangarAgentNotConverged", evalAt: 10 * time.Minute, want: perAgent(nil)},
	})

	// etcd is lost: every replica reports it; the leader steps down.
	c.etcd.Kill()
	eventually(t, 30*time.Second, "every replica reports etcd unhealthy and none leads", func() bool {
		for _, r := range c.replicas {
			if v, ok := r.Metric("hangar_controlplane_etcd_healthy"); !ok || v != 0 {
				return false
			}
			if r.IsLeader() {
				return false
			}
		}
		return true
	})
	var replicas []expAlert
	for _, r := range c.replicas {
		replicas = append(replicas, expAlert{"instance": r.HTTP})
	}
	files["etcd-lost"] = rulesTest(t, "etcd-lost", scrape(true, true), nil, []alertCase{
		{alert: "HangarEtcdUnhealthy", evalAt: 10 * time.Minute, want: replicas},
		{alert: "HangarControlPlaneNoLeader", evalAt: 10 * time.Minute, want: []expAlert{{}}},
	})

	// Every replica is gone: the agents run on their last snapshot, whose
	// age grows with the clock (60 s a minute).
	for _, r := range c.replicas {
		r.Kill()
	}
	eventually(t, 20*time.Second, "every agent without a control plane", func() bool {
		for _, a := range c.agents {
			if cpAgentMetric(a, "mcp_hangar_control_plane_connected") != 0 {
				return false
			}
		}
		return true
	})
	files["control-plane-lost"] = rulesTest(t, "control-plane-lost", scrape(false, true),
		map[string]float64{"mcp_hangar_snapshot_age_seconds": 60}, []alertCase{
			{alert: "HangarAgentNoControlPlane", evalAt: 10 * time.Minute, want: perAgent(nil)},
			{alert: "HangarControlPlaneDown", evalAt: 10 * time.Minute, want: []expAlert{{}}},
			{alert: "HangarSnapshotStale", evalAt: 10 * time.Minute},
			{alert: "HangarSnapshotStale", evalAt: 40 * time.Minute, want: perAgent(nil)},
		})

	dir := filepath.Join(t.TempDir(), "prometheus")
	writeOpsFile(t, filepath.Join(dir, "rules.yaml"), readFile(t, rulesFile))
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		writeOpsFile(t, filepath.Join(dir, "tests", name+".yaml"), files[name])
		if err := runPromtool(t, promtool, filepath.Join(dir, "tests"), name+".yaml"); err != nil {
			t.Errorf("phase %s: %v", name, err)
		}
		if *updateOps {
			writeOpsFile(t, filepath.Join("../deploy/prometheus/tests", name+".yaml"), files[name])
		}
	}
	checkDashboard(t, promtool, familyNames(all...))
}

// checkVersions checks the build stamp where an operator reads it: each
// binary's --version, both build_info metrics, and the version every agent
// sent in its Hello as `hangarctl agent list` shows it.
func checkVersions(t *testing.T, c *cpCluster) {
	t.Helper()
	for _, bin := range []string{agentBin, cpBin, ctlBin} {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), filepath.Base(bin)+" "+e2eVersion+" (commit ") {
			t.Errorf("%s --version = %q, %v; want %q first", filepath.Base(bin), out, err, filepath.Base(bin)+" "+e2eVersion)
		}
	}
	tg := scrapeTarget(t, "", "", "http://"+c.agents[0].Addr+"/metrics")
	if v, ok := labelled(tg, "mcp_hangar_build_info", "version", e2eVersion); !ok || v != 1 {
		t.Errorf("the agent exports no mcp_hangar_build_info{version=%q} 1", e2eVersion)
	}
	tg = scrapeTarget(t, "", "", "http://"+c.replicas[0].HTTP+"/metrics")
	if v, ok := labelled(tg, "hangar_build_info", "version", e2eVersion); !ok || v != 1 {
		t.Errorf("the replica exports no hangar_build_info{version=%q} 1", e2eVersion)
	}
	out, err := exec.Command(ctlBin, "--control-plane", c.replicas[0].GRPC, "agent", "list", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("hangarctl agent list: %v\n%s", err, out)
	}
	var list struct {
		Agents []struct {
			ID      string `json:"id"`
			Version string `json:"version"`
		} `json:"agents"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("hangarctl agent list -o json: %v\n%s", err, out)
	}
	if len(list.Agents) != len(c.agents) {
		t.Fatalf("hangarctl agent list shows %d agents, want %d:\n%s", len(list.Agents), len(c.agents), out)
	}
	for _, a := range list.Agents {
		if a.Version != e2eVersion {
			t.Errorf("hangarctl agent list: agent %s has version %q, want %q", a.ID, a.Version, e2eVersion)
		}
	}
}

// labelled returns the value of the sample of family name whose label k is v.
func labelled(tg target, name, k, v string) (float64, bool) {
	f, ok := tg.families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// checkDashboard checks that every query of the shipped dashboard parses
// (promtool check rules on a rule per query) and names only metric
// families the processes exported.
func checkDashboard(t *testing.T, promtool string, exported map[string]bool) {
	t.Helper()
	queries := dashboardQueries(t, "../deploy/grafana/hangar-dashboard.json")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries {
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, mustJSON(q))
		for _, m := range metricNames(q) {
			if !exported[m] && !exported[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] {
				t.Errorf("dashboard query %q names %s, which no scraped agent or replica exported", q, m)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	writeOpsFile(t, path, b.String())
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("a dashboard query does not parse: %v\n%s\n%s", err, out, b.String())
	}
}

// dashboardQueries returns every target expression of a Grafana dashboard
// with Grafana's variables replaced by values PromQL accepts.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readFile(t, path)), &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, vars.Replace(tg.Expr))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no queries", path)
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, matchers, ranges and grouping clauses are
// removed, other than function calls and keywords.
func metricNames(q string) []string {
	q = promString.ReplaceAllString(q, `""`)
	q = promMatchers.ReplaceAllString(q, " ")
	q = promGrouping.ReplaceAllString(q, " ")
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
	var out []string
	for _, id := range promIdent.FindAllString(q, -1) {
		if strings.HasSuffix(id, "(") || keywords[strings.ToLower(strings.TrimSpace(id))] {
			continue
		}
		out = append(out, strings.TrimSpace(id))
	}
	return out
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeOpsFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
