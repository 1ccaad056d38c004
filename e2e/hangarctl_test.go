package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// hangarctl against a real control plane (docs/design.md §4.4): one etcd node, one
// hangar-controlplane replica storing recipe 04, two managed agents and the
// mcp-math members my-mcp and my-mcp-backup. Each test runs the hangarctl
// binary as an operator would and checks what the operator would see, and
// that the fleet does what the command said.

// ctlAgentIDs are the agents' --agent-id values.
var ctlAgentIDs = []string{"ctl-a", "ctl-b"}

// ctlWorld is one test's fleet.
type ctlWorld struct {
	t        *testing.T
	primary  *Math
	backup   *Math
	replica  *cpReplica
	fleet    string // path of the fleet file the replica stored
	etcd     string // the etcd endpoint
	agents   []*Agent
	sessions []*mcp.ClientSession
}

// startCtlWorld starts the members, etcd, the replica storing recipe 04
// (changed by edit when not nil) and both agents, and returns once both
// agents run the latest snapshot with both members in rotation.
func startCtlWorld(t *testing.T, edit func(string) string) *ctlWorld {
	t.Helper()
	skipShort(t)
	w := &ctlWorld{t: t}
	w.primary = startMath(t, primary, "")
	w.backup = startMath(t, backup, "")
	fleet := cpRecipe04(t, w.primary.URL(), w.backup.URL())
	if edit != nil {
		fleet = edit(fleet)
	}
	w.fleet = writeConfig(t, fleet)
	etcd := cpStartEtcd(t)
	w.etcd = etcd.Endpoint
	w.replica = cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", w.fleet, "--election-ttl", cpTTL.String())
	eventually(t, 10*time.Second, "the replica to lead", w.replica.IsLeader)
	for _, id := range ctlAgentIDs {
		a := cpStartAgent(t, id, []string{w.replica.GRPC}, filepath.Join(t.TempDir(), "state-"+id))
		w.agents = append(w.agents, a)
		w.sessions = append(w.sessions, a.Connect())
	}
	eventually(t, 20*time.Second, "both agents on the replica's latest snapshot", func() bool {
		if len(cpMatches(w.replica.Logs(), `msg=snapshot_written version=\d+ agents=(2)\b`)) == 0 {
			return false
		}
		v, ok := w.replica.Metric("hangar_controlplane_snapshot_version")
		if !ok {
			return false
		}
		for _, a := range w.agents {
			if cpAgentMetric(a, "mcp_hangar_control_plane_connected") != 1 || cpAgentMetric(a, "mcp_hangar_snapshot_version") != v {
				return false
			}
		}
		return true
	})
	for i := range w.agents {
		eventually(t, 15*time.Second, ctlAgentIDs[i]+" has both members in rotation", func() bool {
			g := groupDetails(t, w.sessions[i])
			return g.member(primary).InRotation && g.member(backup).InRotation && g.Active == primary
		})
	}
	return w
}

// ctlResult is what one hangarctl run printed and its exit code.
type ctlResult struct {
	stdout, stderr string
	code           int
}

func (r ctlResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCtl runs hangarctl --control-plane endpoint args… and waits for it.
func runCtl(t *testing.T, endpoint string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctlBin, append([]string{"--control-plane", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), ctlGorace())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ctlResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("hangarctl %s did not end within 30 s\n%s", strings.Join(args, " "), res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run hangarctl %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ctlGorace is the GORACE setting hangarctl runs with: without it the race
// detector's runtime sleeps a second at every exit, most of a command's time.
func ctlGorace() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// ctl runs hangarctl against the world's replica.
func (w *ctlWorld) ctl(args ...string) ctlResult {
	w.t.Helper()
	return runCtl(w.t, w.replica.GRPC, args...)
}

// mustCtl runs hangarctl and fails the test unless it exits 0.
func (w *ctlWorld) mustCtl(args ...string) string {
	w.t.Helper()
	res := w.ctl(args...)
	if res.code != 0 {
		w.t.Fatalf("hangarctl %s: %s", strings.Join(args, " "), res)
	}
	return res.stdout
}

// ctlGroup is `hangarctl group status -o json`.
type ctlGroup struct {
	ID       string `json:"id"`
	Strategy string `json:"strategy"`
	State    string `json:"state"`
	Breaker  struct {
		State         string `json:"state"`
		OpenAgents    int    `json:"open_agents"`
		CallingAgents int    `json:"calling_agents"`
	} `json:"breaker"`
	Active          string      `json:"active_member"`
	Members         []ctlMember `json:"members"`
	SnapshotVersion uint64      `json:"snapshot_version"`
	AgentsAcked     int         `json:"agents_acked"`
	AgentsTotal     int         `json:"agents_total"`
}

// ctlMember is one member in ctlGroup.
type ctlMember struct {
	ID         string  `json:"id"`
	Priority   int     `json:"priority"`
	State      string  `json:"state"`
	InRotation bool    `json:"in_rotation"`
	Reason     string  `json:"reason"`
	Drained    bool    `json:"drained"`
	OKPerSec   float64 `json:"ok_per_second"`
	ErrPerSec  float64 `json:"error_per_second"`
}

func (g ctlGroup) member(id string) ctlMember {
	for _, m := range g.Members {
		if m.ID == id {
			return m
		}
	}
	return ctlMember{}
}

// groupJSON runs `group status my-mcp-group -o json` and decodes it.
func (w *ctlWorld) groupJSON() (ctlGroup, string) {
	w.t.Helper()
	out := w.mustCtl("group", "status", group, "-o", "json")
	var g ctlGroup
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		w.t.Fatalf("group status -o json is not the GroupStatus document: %v\n%s", err, out)
	}
	return g, out
}

// waitGroup polls `group status -o json` until cond holds and returns the
// document that satisfied it.
func (w *ctlWorld) waitGroup(timeout time.Duration, what string, cond func(ctlGroup) bool) ctlGroup {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g, out := w.groupJSON()
		if cond(g) {
			return g
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %s waiting for group status to show %s; last:\n%s", timeout, what, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTable polls `group status my-mcp-group` (table) until cond holds
// and returns that output.
func (w *ctlWorld) waitTable(timeout time.Duration, what string, cond func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := w.mustCtl("group", "status", group)
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %s waiting for group status to show %s; last:\n%s", timeout, what, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tableCell returns the cell of a table in out (the one whose header row
// starts with firstCol) in column col of the row whose first cell is row,
// or "" if there is none. Cells are cut at the header's column starts, so
// a cell may hold spaces ("2/2 ready").
func tableCell(out, firstCol, row, col string) string {
	lines := strings.Split(out, "\n")
	for i, h := range lines {
		if !strings.HasPrefix(h, firstCol+" ") {
			continue
		}
		var starts []int
		for _, loc := range regexp.MustCompile(`\S+`).FindAllStringIndex(h, -1) {
			starts = append(starts, loc[0])
		}
		c := -1
		for k, s := range starts {
			if strings.Fields(h[s:])[0] == col {
				c = k
			}
		}
		if c < 0 {
			return ""
		}
		for _, l := range lines[i+1:] {
			if l == "" {
				return ""
			}
			if f := strings.Fields(l); len(f) == 0 || f[0] != row || len(l) <= starts[c] {
				continue
			}
			end := len(l)
			if c+1 < len(starts) && starts[c+1] < end {
				end = starts[c+1]
			}
			return strings.TrimSpace(l[starts[c]:end])
		}
	}
	return ""
}

// memberCell is a cell of the member table of `group status`.
func memberCell(out, member, col string) string { return tableCell(out, "MEMBER", member, col) }

// waitApplied waits until agent i logged snapshot_applied for version v or
// newer.
func (w *ctlWorld) waitApplied(i int, v uint64) {
	w.t.Helper()
	eventually(w.t, 10*time.Second, fmt.Sprintf("%s applying snapshot %d", ctlAgentIDs[i], v), func() bool {
		for _, l := range cpLines(w.agents[i].Logs(), `msg=snapshot_applied version=(\d+)`) {
			if got, _ := strconv.ParseUint(l.sub, 10, 64); got >= v {
				return true
			}
		}
		return false
	})
}

// callsOn sends n add calls through agent i and checks that each succeeded
// on member at the first attempt.
func (w *ctlWorld) callsOn(i, n int, member string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k := range n {
		res, err := callOne(ctx, w.sessions[i], group, "add", map[string]any{"a": k, "b": 1})
		if err != nil || !res.Success || res.Member != member || res.Attempts != 1 {
			w.t.Fatalf("%s call %d: %+v (%s), %v; want success on %s at the first attempt",
				ctlAgentIDs[i], k, res, deref(res.Error), err, member)
		}
	}
}

// TestCtlGroupStatus: `group status` shows recipe 04 as it runs: priority,
// healthy, my-mcp active, both members in rotation, every agent on the
// current snapshot; -o json says the same; calls through an agent show up
// as my-mcp's ok/s within a few heartbeats.
func TestCtlGroupStatus(t *testing.T) {
	w := startCtlWorld(t, nil)

	healthy := func(out string) bool {
		return strings.Contains(out, "Group: my-mcp-group ") &&
			strings.Contains(out, "Strategy: priority ") && strings.Contains(out, "State: healthy ") &&
			regexp.MustCompile(`Snapshot: \d+ \(2/2 agents\)`).MatchString(out) &&
			strings.Contains(out, "\nBreaker: closed") && strings.Contains(out, "\nActive: my-mcp\n") &&
			memberCell(out, primary, "PRIORITY") == "1" && memberCell(out, backup, "PRIORITY") == "2" &&
			memberCell(out, primary, "STATE") == "ready" && memberCell(out, backup, "STATE") == "ready" &&
			memberCell(out, primary, "ROTATION") == "in" && memberCell(out, backup, "ROTATION") == "in"
	}
	w.waitTable(10*time.Second, "priority, healthy, my-mcp active, both in rotation, 2/2 agents", healthy)

	g := w.waitGroup(10*time.Second, "the same in JSON", func(g ctlGroup) bool {
		return g.AgentsAcked == 2 && g.AgentsTotal == 2
	})
	if g.ID != group || g.Strategy != "priority" || g.State != "healthy" || g.Active != primary ||
		g.Breaker.State != "closed" || g.SnapshotVersion == 0 {
		t.Errorf("group status -o json: %+v; want %s, priority, healthy, active %s, breaker closed, a snapshot version",
			g, group, primary)
	}
	for _, id := range []string{primary, backup} {
		if m := g.member(id); m.State != "ready" || !m.InRotation || m.Drained {
			t.Errorf("group status -o json: member %s = %+v; want ready, in rotation, not drained", id, m)
		}
	}
	if p, b := g.member(primary).Priority, g.member(backup).Priority; p != 1 || b != 2 {
		t.Errorf("group status -o json: priorities %d, %d; want 1, 2", p, b)
	}

	w.callsOn(0, 30, primary)
	out := w.waitTable(15*time.Second, "my-mcp's ok/s above 0", func(out string) bool {
		ok, err := strconv.ParseFloat(memberCell(out, primary, "OK/s"), 64)
		return err == nil && ok > 0
	})
	if c := memberCell(out, backup, "OK/s"); c != "0.0" {
		t.Errorf("my-mcp-backup OK/s %q, want 0.0: it served no call\n%s", c, out)
	}
	if c := memberCell(out, primary, "P50(ms)"); c == "-" || c == "" {
		t.Errorf("my-mcp P50(ms) %q after 30 calls, want a latency\n%s", c, out)
	}
	g, raw := w.groupJSON()
	if m := g.member(primary); m.OKPerSec <= 0 || m.ErrPerSec != 0 {
		t.Errorf("group status -o json: my-mcp ok_per_second %g, error_per_second %g; want > 0 and 0\n%s", m.OKPerSec, m.ErrPerSec, raw)
	}
}

// TestCtlDrainMovesTraffic: `member drain` moves every agent's calls to the
// backup (counted by the members themselves) and `member undrain` brings
// them back.
func TestCtlDrainMovesTraffic(t *testing.T) {
	w := startCtlWorld(t, nil)

	if out := w.mustCtl("member", "drain", group, primary); !strings.Contains(out, "drained member my-mcp of group my-mcp-group") {
		t.Errorf("member drain printed %q", out)
	}
	g := w.waitGroup(10*time.Second, "my-mcp drained and out of rotation in the snapshot", func(g ctlGroup) bool {
		m := g.member(primary)
		return m.Drained && !m.InRotation && m.Reason == "drained" && g.Active == backup
	})
	w.waitTable(5*time.Second, "my-mcp drained", func(out string) bool {
		return memberCell(out, primary, "ROTATION") == "drained" && memberCell(out, backup, "ROTATION") == "in" &&
			strings.Contains(out, "\nActive: my-mcp-backup\n")
	})
	for i := range w.agents {
		w.waitApplied(i, g.SnapshotVersion)
	}
	p0, b0 := w.primary.Stats().TotalCalls, w.backup.Stats().TotalCalls
	for i := range w.agents {
		w.callsOn(i, 10, backup)
	}
	if p, b := w.primary.Stats().TotalCalls, w.backup.Stats().TotalCalls; p != p0 || b != b0+20 {
		t.Errorf("with my-mcp drained: my-mcp served %d calls, my-mcp-backup %d; want 0 and 20", p-p0, b-b0)
	}

	if out := w.mustCtl("member", "undrain", group, primary); !strings.Contains(out, "undrained member my-mcp of group my-mcp-group") {
		t.Errorf("member undrain printed %q", out)
	}
	g = w.waitGroup(10*time.Second, "my-mcp back in rotation in the snapshot", func(g ctlGroup) bool {
		m := g.member(primary)
		return !m.Drained && m.InRotation && g.Active == primary
	})
	for i := range w.agents {
		w.waitApplied(i, g.SnapshotVersion)
	}
	p0, b0 = w.primary.Stats().TotalCalls, w.backup.Stats().TotalCalls
	for i := range w.agents {
		w.callsOn(i, 10, primary)
	}
	if p, b := w.primary.Stats().TotalCalls, w.backup.Stats().TotalCalls; p != p0+20 || b != b0 {
		t.Errorf("after undrain: my-mcp served %d calls, my-mcp-backup %d; want 20 and 0", p-p0, b-b0)
	}
}

// configGet returns `config get` (the stored file) and its revision.
func (w *ctlWorld) configGet() (string, int64) {
	w.t.Helper()
	text := w.mustCtl("config", "get")
	raw := w.mustCtl("config", "get", "-o", "json")
	var resp struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(raw), &resp); err != nil {
		w.t.Fatalf("config get -o json: %v\n%s", err, raw)
	}
	return text, resp.Revision
}

// groupDescription is the group's description as agent i runs it.
func (w *ctlWorld) groupDescription(i int) string {
	w.t.Helper()
	var g struct {
		Description string `json:"description"`
	}
	details(w.t, w.sessions[i], group, &g)
	return g.Description
}

// writeFile writes data to name in a temp dir and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineOf returns the 1-based line of the first occurrence of sub in s.
func lineOf(t *testing.T, s, sub string) int {
	t.Helper()
	i := strings.Index(s, sub)
	if i < 0 {
		t.Fatalf("%q not in the fleet file", sub)
	}
	return strings.Count(s[:i], "\n") + 1
}

const (
	oldDescription = `description: "Primary/backup MCP failover"`
	newDescription = `description: "Primary/backup MCP failover, applied with hangarctl"`
)

// TestCtlConfigApply: a dry run prints the diff and stores nothing; an
// apply stores the file and every agent runs it; a broken file is refused
// with the parser's file:line and the stored config stays.
func TestCtlConfigApply(t *testing.T) {
	w := startCtlWorld(t, nil)
	orig, rev0 := w.configGet()
	fleet, err := os.ReadFile(w.fleet)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSuffix(orig, "\n") != strings.TrimSuffix(string(fleet), "\n") {
		t.Fatalf("config get does not print the fleet file the replica stored:\n%s", orig)
	}
	good := strings.Replace(orig, oldDescription, newDescription, 1)
	if good == orig {
		t.Fatalf("recipe 04 has no %s", oldDescription)
	}
	goodPath := writeFile(t, "good.yaml", good)

	dry := w.ctl("config", "apply", "-f", goodPath, "--dry-run")
	if dry.code != 3 || dry.stderr != "" {
		t.Errorf("config apply --dry-run with a diff: %s\nwant exit 3 and no error", dry)
	}
	out := dry.stdout
	for _, want := range []string{"-    " + oldDescription, "+    " + newDescription, "dry run: the config would change"} {
		if !strings.Contains(out, want) {
			t.Errorf("config apply --dry-run: no %q in\n%s", want, out)
		}
	}
	if now, rev := w.configGet(); now != orig || rev != rev0 {
		t.Fatalf("after a dry run the stored config changed (revision %d → %d):\n%s", rev0, rev, now)
	}
	if same := w.ctl("config", "apply", "-f", writeFile(t, "same.yaml", orig), "--dry-run"); same.code != 0 {
		t.Errorf("config apply --dry-run of the stored file: %s\nwant exit 0 (no diff)", same)
	}

	v0 := make([]float64, len(w.agents))
	for i, a := range w.agents {
		v0[i] = cpAgentMetric(a, "mcp_hangar_snapshot_version")
	}
	out = w.mustCtl("config", "apply", "-f", goodPath)
	if !strings.Contains(out, "+    "+newDescription) || !regexp.MustCompile(`applied: revision \d+`).MatchString(out) {
		t.Errorf("config apply printed\n%s\nwant the diff and \"applied: revision N\"", out)
	}
	now, rev1 := w.configGet()
	if now != good || rev1 <= rev0 {
		t.Fatalf("config get after apply: revision %d (was %d)\n%s\nwant the applied file", rev1, rev0, now)
	}
	for i := range w.agents {
		eventually(t, 10*time.Second, ctlAgentIDs[i]+" running the applied file", func() bool {
			return w.groupDescription(i) == "Primary/backup MCP failover, applied with hangarctl"
		})
		if v := cpAgentMetric(w.agents[i], "mcp_hangar_snapshot_version"); v <= v0[i] {
			t.Errorf("%s runs the applied file on snapshot %g, not newer than %g", ctlAgentIDs[i], v, v0[i])
		}
	}

	broken := strings.Replace(good, "- id: my-mcp ", "- id: my-mcpp ", 1)
	brokenPath := writeFile(t, "broken.yaml", broken)
	res := w.ctl("config", "apply", "-f", brokenPath)
	want := fmt.Sprintf(`%s:%d: mcp_servers.my-mcp-group.members[0].id: unknown server "my-mcpp"`, brokenPath, lineOf(t, broken, "my-mcpp"))
	if res.code != 1 || !strings.Contains(res.stderr, want) || res.stdout != "" {
		t.Errorf("config apply -f broken.yaml: %s\nwant exit 1 and %q on stderr, nothing on stdout", res, want)
	}
	if now, rev := w.configGet(); now != good || rev != rev1 {
		t.Errorf("the broken file changed the stored config (revision %d → %d):\n%s", rev1, rev, now)
	}
}

// TestCtlBreakerReset: both members fail every call, the group's breaker
// opens on agent A and group status shows it open fleet-wide; traffic keeps
// coming through both agents (rejected by their open breakers) while the
// faults are fixed. `breaker reset` closes the breaker on both agents at
// the next snapshot, long before reset_timeout_s (60 s) could have, and
// their calls pass again.
func TestCtlBreakerReset(t *testing.T) {
	w := startCtlWorld(t, func(s string) string {
		const cb = "      failure_threshold: 3\n      reset_timeout_s: 30\n"
		if !strings.Contains(s, cb) {
			t.Fatalf("recipe 04 changed shape: no %q", cb)
		}
		// Members stay in local rotation, so only the breaker stops calls.
		return strings.Replace(s, cb, "      failure_threshold: 2\n      reset_timeout_s: 60\n    health:\n      unhealthy_threshold: 10\n", 1)
	})
	// Probes (tools/list) fail too: a passing probe would half-open the
	// breaker within a second, and this test is about the operator's reset.
	fail := mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailMode: mathserver.FailRPC, FailList: true}
	w.primary.SetFaults(fail)
	w.backup.SetFaults(fail)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		res, err := callOne(ctx, w.sessions[0], group, "add", map[string]any{"a": 1, "b": 2})
		if err != nil || res.Success || deref(res.ErrorType) != "ServerError" {
			t.Fatalf("call %d with both members failing: %+v, %v; want a ServerError", i, res, err)
		}
	}
	opened := cpLineTime(t, w.agents[0].WaitLog(`msg=circuit_opened group=my-mcp-group`, 5*time.Second))
	if res, err := callOne(ctx, w.sessions[0], group, "add", map[string]any{"a": 1, "b": 2}); err != nil || deref(res.ErrorType) != "CircuitOpen" {
		t.Fatalf("call with the breaker open: %+v, %v; want CircuitOpen", res, err)
	}
	w.waitGroup(15*time.Second, "the breaker open", func(g ctlGroup) bool {
		return g.Breaker.State == "open" && g.Breaker.OpenAgents >= 1 && g.State == "degraded"
	})
	w.waitTable(5*time.Second, "Breaker: OPEN", func(out string) bool {
		return strings.Contains(out, "\nBreaker: OPEN — ")
	})

	// The fleet-wide verdict opens B's breaker at its first call.
	trB := startTraffic(t, w.sessions[1], group, 1, 10*time.Millisecond)
	w.agents[1].WaitLog(`msg=circuit_opened group=my-mcp-group`, 10*time.Second)
	trB.Stop()
	// The members still fail and no agent sends a call: a passing probe may
	// half-open a breaker, but only a trial call (none is made) or the
	// operator's reset can close it.
	for i := range w.agents {
		if g := groupDetails(t, w.sessions[i]); g.Breaker != "open" && g.Breaker != "half_open" {
			t.Fatalf("%s's breaker %q before the reset, want open or half_open", ctlAgentIDs[i], g.Breaker)
		}
	}

	closedBefore := make([]int, len(w.agents))
	for i, a := range w.agents {
		closedBefore[i] = len(cpLines(a.Logs(), `msg=circuit_closed group=my-mcp-group`))
	}
	if out := w.mustCtl("breaker", "reset", group); !strings.Contains(out, "reset the breaker of group my-mcp-group") {
		t.Errorf("breaker reset printed %q", out)
	}
	for i, a := range w.agents {
		eventually(t, 10*time.Second, ctlAgentIDs[i]+" closing its breaker", func() bool {
			return len(cpLines(a.Logs(), `msg=circuit_closed group=my-mcp-group`)) > closedBefore[i] &&
				groupDetails(t, w.sessions[i]).Breaker == "closed"
		})
	}
	if d := time.Since(opened); d >= 60*time.Second {
		t.Fatalf("the breaker opened %s ago: reset_timeout_s could explain it closing", d)
	}

	// The members recover: with the breakers closed, calls pass at once.
	w.primary.SetFaults(mathserver.Faults{})
	w.backup.SetFaults(mathserver.Faults{})
	healed := time.Now()
	for i := range w.agents {
		tr := startTraffic(t, w.sessions[i], group, 1, 10*time.Millisecond)
		tr.waitCalls(t, primary, healed, 20, 10*time.Second)
		tr.Stop()
		if f := failures(tr.records()); f != "" {
			t.Errorf("%s, calls after the reset and the members' recovery: %s", ctlAgentIDs[i], f)
		}
		if g := groupDetails(t, w.sessions[i]); g.Breaker != "closed" {
			t.Errorf("%s's breaker %q after the reset, want closed", ctlAgentIDs[i], g.Breaker)
		}
	}
	w.waitGroup(15*time.Second, "the breaker closed", func(g ctlGroup) bool {
		return g.Breaker.State == "closed" && g.State == "healthy"
	})
}

// TestCtlEventsFollow: `events --follow --group` streams the drain and the
// undrain as they happen, and ends cleanly on SIGTERM.
func TestCtlEventsFollow(t *testing.T) {
	w := startCtlWorld(t, nil)
	p, err := proc.Start(proc.Spec{Name: "hangarctl events", Path: ctlBin,
		Args: []string{"--control-plane", w.replica.GRPC, "events", "--follow", "--group", group}, Env: []string{ctlGorace()}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })

	w.mustCtl("member", "drain", group, primary)
	cpWaitLog(t, p, "hangarctl events", `member_drained my-mcp-group/my-mcp: drained by `, 10*time.Second)
	// Undrained only now, after the follower printed the drain: it can
	// only print this line by following.
	w.mustCtl("member", "undrain", group, primary)
	cpWaitLog(t, p, "hangarctl events", `member_undrained my-mcp-group/my-mcp: undrained by `, 10*time.Second)
	if p.Exited() {
		t.Fatalf("events --follow exited:\n%s", p.Output())
	}
	for _, l := range strings.Split(strings.TrimSpace(p.Output()), "\n") {
		if !strings.Contains(l, " my-mcp-group") {
			t.Errorf("events --group my-mcp-group printed another group's event: %s", l)
		}
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("events --follow on SIGTERM: %v, want exit 0\n%s", err, p.Output())
	}
}

// TestCtlErrors: the exit codes and messages of an unknown group, an
// invalid config and an unreachable control plane; cluster status.
func TestCtlErrors(t *testing.T) {
	w := startCtlWorld(t, nil)

	res := w.ctl("group", "status", "no-such-group")
	if res.code != 1 || !strings.Contains(res.stderr, `"no-such-group"`) || res.stdout != "" {
		t.Errorf("group status no-such-group: %s\nwant exit 1 and a message naming the group", res)
	}

	orig, rev := w.configGet()
	bad := strings.Replace(orig, "    strategy: priority", "    strategy: priorty", 1)
	path := writeFile(t, "bad.yaml", bad)
	res = w.ctl("config", "apply", "-f", path, "--dry-run")
	want := fmt.Sprintf("%s:%d: mcp_servers.my-mcp-group.strategy: ", path, lineOf(t, bad, "priorty"))
	if res.code != 1 || !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "priorty") {
		t.Errorf("config apply -f bad.yaml: %s\nwant exit 1 and %q… on stderr", res, want)
	}
	if now, r := w.configGet(); now != orig || r != rev {
		t.Errorf("an invalid file changed the stored config (revision %d → %d)", rev, r)
	}

	res = runCtl(t, "127.0.0.1:1", "group", "status", group)
	if res.code != 2 || !strings.Contains(res.stderr, "cannot reach the control plane at 127.0.0.1:1") {
		t.Errorf("hangarctl --control-plane 127.0.0.1:1: %s\nwant exit 2 naming the endpoint", res)
	}

	out := w.mustCtl("cluster", "status")
	if !regexp.MustCompile(`Leader: r1 .* Agents: 2 +etcd: 1/1 healthy`).MatchString(out) ||
		tableCell(out, "REPLICA", "r1", "LEADER") != "yes" || tableCell(out, "REPLICA", "r1", "ADDRESS") != w.replica.GRPC ||
		!regexp.MustCompile(`(?m)^http://127\.0\.0\.1:\d+ +yes +yes `).MatchString(out) {
		t.Errorf("cluster status:\n%s\nwant r1 leading, 2 agents and the etcd node healthy", out)
	}
}
