package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/proc"
)

// The control-plane harness: a standalone etcd node, hangar-controlplane
// replicas sharing it, and managed agents (hangar-agent --control-plane)
// that take the fleet from the replicas' snapshots, all real processes on
// loopback, ended by PID.

var (
	cpEtcdReady    = regexp.MustCompile(`etcd ready endpoints=(\S+)`)
	cpReplicaReady = regexp.MustCompile(`msg=controlplane_started replica=\S+ (grpc=\S+ http=\S+)`)
	cpLogTime      = regexp.MustCompile(`^time=(\S+)`)
)

// cpEtcd is a running `hangar-controlplane etcd` process.
type cpEtcd struct {
	Endpoint string // client URL
	proc     *proc.Process
}

// cpStartEtcd starts a single etcd node on a free loopback port.
func cpStartEtcd(t *testing.T) *cpEtcd {
	t.Helper()
	args := []string{"etcd", "--data-dir", filepath.Join(t.TempDir(), "etcd"), "--listen-client", "http://127.0.0.1:0"}
	p, err := proc.Start(proc.Spec{Name: "etcd", Path: cpBin, Args: args, Ready: cpEtcdReady}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e := &cpEtcd{Endpoint: strings.Split(p.Ready(), ",")[0], proc: p}
	t.Cleanup(func() { _ = p.Stop(5 * time.Second) })
	return e
}

// Kill kills the node with SIGKILL.
func (e *cpEtcd) Kill() { e.proc.Kill() }

// cpReplica is a running control-plane replica.
type cpReplica struct {
	Name string
	GRPC string // host:port agents dial
	HTTP string // host:port of /metrics
	proc *proc.Process
	t    *testing.T
}

// cpStartReplica starts replica name on free ports, sharing the etcd at
// endpoint. extra are more flags (--fleet-config, --election-ttl …).
func cpStartReplica(t *testing.T, name, endpoint string, extra ...string) *cpReplica {
	t.Helper()
	args := append([]string{"serve", "--name", name, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--etcd-endpoints", endpoint}, extra...)
	p, err := proc.Start(proc.Spec{Name: "replica " + name, Path: cpBin, Args: args, Ready: cpReplicaReady}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := &cpReplica{Name: name, proc: p, t: t}
	for _, f := range strings.Fields(p.Ready()) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "grpc":
			r.GRPC = v
		case "http":
			r.HTTP = v
		}
	}
	t.Cleanup(func() {
		_ = p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("replica %s output:\n%s", name, p.Output())
		}
	})
	return r
}

// Kill kills the replica with SIGKILL.
func (r *cpReplica) Kill() { r.proc.Kill() }

// Logs returns what the replica logged so far.
func (r *cpReplica) Logs() string { return r.proc.Output() }

// WaitLog waits for a log line matching re.
func (r *cpReplica) WaitLog(re string, timeout time.Duration) string {
	r.t.Helper()
	return cpWaitLog(r.t, r.proc, "replica "+r.Name, re, timeout)
}

// Metric returns the value of an unlabelled metric of the replica, and
// false if the replica does not answer.
func (r *cpReplica) Metric(name string) (float64, bool) {
	v, err := cpScrape("http://"+r.HTTP+"/metrics", name)
	return v, err == nil
}

// IsLeader reports whether the replica says it is the leader.
func (r *cpReplica) IsLeader() bool {
	v, ok := r.Metric("hangar_controlplane_leader")
	return ok && v == 1
}

func cpWaitLog(t *testing.T, p *proc.Process, what, re string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, err := p.WaitFor(ctx, regexp.MustCompile(re))
	if err != nil {
		t.Fatalf("%v\n%s output:\n%s", err, what, p.Output())
	}
	return line
}

// scrape reads one unlabelled sample from a Prometheus text endpoint.
func cpScrape(url, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no sample %s", url, name)
}

// cpStartAgent starts a hangar-agent that reports to the replicas at
// endpoints (tried in that order) and keeps its snapshots in stateDir.
// Without --config among extra it takes the fleet from the snapshots.
func cpStartAgent(t *testing.T, id string, endpoints []string, stateDir string, extra ...string) *Agent {
	t.Helper()
	return cpStartAgentEnv(t, id, endpoints, stateDir, nil, extra...)
}

// cpStartAgentEnv is cpStartAgent with extra environment variables.
func cpStartAgentEnv(t *testing.T, id string, endpoints []string, stateDir string, env []string, extra ...string) *Agent {
	t.Helper()
	a := cpStartAgentUnreadyEnv(t, id, endpoints, stateDir, env, extra...)
	// The front door listens at once; calls are served once a fleet
	// configuration runs (from the state dir or the first snapshot).
	eventually(t, 20*time.Second, "agent "+id+" ready", func() bool { return cpAgentReady(a) == http.StatusOK })
	return a
}

// cpStartAgentUnready is cpStartAgent returning as soon as the agent
// listens, ready or not.
func cpStartAgentUnready(t *testing.T, id string, endpoints []string, stateDir string, extra ...string) *Agent {
	t.Helper()
	return cpStartAgentUnreadyEnv(t, id, endpoints, stateDir, nil, extra...)
}

func cpStartAgentUnreadyEnv(t *testing.T, id string, endpoints []string, stateDir string, env []string, extra ...string) *Agent {
	t.Helper()
	args := append([]string{"serve", "--http", "--port", "0", "--log-level", "debug",
		"--control-plane", strings.Join(endpoints, ","), "--agent-id", id, "--state-dir", stateDir}, extra...)
	p, err := proc.Start(proc.Spec{Name: "hangar-agent " + id, Path: agentBin, Args: args, Env: env, Ready: agentReady}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{Addr: p.Ready(), proc: p, t: t}
	t.Cleanup(func() { cpStopAgent(a) })
	return a
}

// cpAgentReady returns the status of the agent's /health/ready.
func cpAgentReady(a *Agent) int {
	resp, err := http.Get("http://" + a.Addr + "/health/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// cpStopAgent ends the agent with SIGTERM (once) and reports an unclean exit.
func cpStopAgent(a *Agent) {
	if a.proc.Exited() {
		return
	}
	if err := a.proc.Stop(10 * time.Second); err != nil {
		a.t.Errorf("hangar-agent did not stop cleanly: %v\n%s", err, a.proc.Output())
	}
	if a.t.Failed() {
		a.t.Logf("hangar-agent output:\n%s", a.proc.Output())
	}
}

// cpAgentMetric returns the value of an unlabelled metric of the agent.
func cpAgentMetric(a *Agent, name string) float64 {
	a.t.Helper()
	v, err := cpScrape("http://"+a.Addr+"/metrics", name)
	if err != nil {
		a.t.Fatalf("agent metric %s: %v", name, err)
	}
	return v
}

// cpLineTime returns the time stamp of a text log line.
func cpLineTime(t *testing.T, line string) time.Time {
	t.Helper()
	m := cpLogTime.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("log line without time=: %s", line)
	}
	ts, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	return ts
}

// cpMatches returns the first submatch of every match of re in logs.
func cpMatches(logs, re string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(logs, -1) {
		out = append(out, m[1])
	}
	return out
}

// cpRecipe04 is the failover recipe's fleet file with the members at the
// given MCP URLs, probed every second.
func cpRecipe04(t *testing.T, primaryURL, backupURL string) string {
	t.Helper()
	data, err := os.ReadFile("../internal/fleetfile/testdata/recipes/04-failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"http://localhost:8080/mcp", primaryURL,
		"http://localhost:8081/mcp", backupURL,
		"health_check_interval_s: 30", "health_check_interval_s: 1",
	).Replace(string(data))
	if strings.Contains(s, "localhost:808") || strings.Count(s, "health_check_interval_s: 1") != 2 {
		t.Fatalf("recipe 04 changed shape; fix cpRecipe04:\n%s", s)
	}
	return s
}

// cpCluster is the scenario's world: mcp-math primary and backup, one etcd
// node, three replicas sharing it, and agents A, B and C that each know
// every replica (in a rotated order, so that they spread over them).
type cpCluster struct {
	t        *testing.T
	primary  *Math
	backup   *Math
	etcd     *cpEtcd
	replicas []*cpReplica
	fleet    string // the fleet file the replicas stored

	agents    []*Agent // A, B, C
	sessions  []*mcp.ClientSession
	stateDirs []string
}

// cpAgentIDs are the agents' --agent-id values; index i is agent A, B, C.
var cpAgentIDs = []string{"agent-a", "agent-b", "agent-c"}

// cpTTL is the replicas' --election-ttl. etcd grants no lease under about
// 2 s with its default timings, so a shorter TTL would not be honoured.
const cpTTL = 2 * time.Second

// startControlPlane starts the members, etcd and three replicas that store
// recipe 04 as the fleet file.
func startControlPlane(t *testing.T) *cpCluster { return startControlPlaneFleet(t, 0, nil) }

// startControlPlanePadded is startControlPlane with a comment of pad bytes
// appended to the fleet file: every snapshot carries the file, so this
// sets the size of the snapshots.
func startControlPlanePadded(t *testing.T, pad int) *cpCluster {
	return startControlPlaneFleet(t, pad, nil)
}

// startControlPlaneFleet starts the cluster; primaryURL, when not nil,
// turns the primary's address into the endpoint the fleet file names (for
// example one with a ${VAR} that a single agent's environment overrides).
func startControlPlaneFleet(t *testing.T, pad int, primaryURL func(addr string) string) *cpCluster {
	t.Helper()
	skipShort(t)
	c := &cpCluster{t: t}
	c.primary = startMath(t, primary, "")
	c.backup = startMath(t, backup, "")
	c.etcd = cpStartEtcd(t)
	pURL := c.primary.URL()
	if primaryURL != nil {
		pURL = primaryURL(c.primary.Addr)
	}
	fleet := cpRecipe04(t, pURL, c.backup.URL())
	if pad > 0 {
		fleet += "# " + strings.Repeat("x", pad) + "\n"
	}
	c.fleet = writeConfig(t, fleet)
	for i := range 3 {
		c.replicas = append(c.replicas, cpStartReplica(t, fmt.Sprintf("r%d", i+1), c.etcd.Endpoint,
			"--fleet-config", c.fleet, "--election-ttl", cpTTL.String()))
	}
	eventually(t, 10*time.Second, "a leader", func() bool { return c.leader() != nil })
	return c
}

// startAgents starts agents A, B and C, which take the fleet from
// snapshots. env maps an agent's index to extra environment variables (the
// fleet file's ${VAR}s are expanded on each agent). It returns once every
// agent runs the leader's latest snapshot and has both members in rotation.
func (c *cpCluster) startAgents(env map[int][]string) {
	c.t.Helper()
	for i, id := range cpAgentIDs {
		dir := filepath.Join(c.t.TempDir(), "state-"+id)
		a := cpStartAgentEnv(c.t, id, c.endpointsFor(i), dir, env[i])
		c.agents = append(c.agents, a)
		c.sessions = append(c.sessions, a.Connect())
		c.stateDirs = append(c.stateDirs, dir)
	}
	c.waitConverged()
	for i := range c.agents {
		eventually(c.t, 15*time.Second, cpAgentIDs[i]+" has both members in rotation", func() bool {
			g := groupDetails(c.t, c.sessions[i])
			return g.member(primary).InRotation && g.member(backup).InRotation && g.Active == primary
		})
	}
}

// endpointsFor lists every replica, starting with replica i mod 3.
func (c *cpCluster) endpointsFor(i int) []string {
	var eps []string
	for j := range c.replicas {
		eps = append(eps, c.replicas[(i+j)%len(c.replicas)].GRPC)
	}
	return eps
}

// leader returns the replica whose metrics say it leads, or nil.
func (c *cpCluster) leader() *cpReplica {
	for _, r := range c.replicas {
		if !r.proc.Exited() && r.IsLeader() {
			return r
		}
	}
	return nil
}

// waitConverged waits until every agent is connected, the leader has
// written a snapshot counting all of them, and every agent runs the
// snapshot version the leader serves.
func (c *cpCluster) waitConverged() {
	c.t.Helper()
	eventually(c.t, 20*time.Second, "every agent on the leader's latest snapshot", func() bool {
		l := c.leader()
		if l == nil || len(cpMatches(l.Logs(), `msg=snapshot_written version=\d+ agents=(3)\b`)) == 0 {
			return false
		}
		v, ok := l.Metric("hangar_controlplane_snapshot_version")
		if !ok {
			return false
		}
		for _, a := range c.agents {
			if cpAgentMetric(a, "mcp_hangar_control_plane_connected") != 1 || cpAgentMetric(a, "mcp_hangar_snapshot_version") != v {
				return false
			}
		}
		return true
	})
}

// cpLine is a log line and the first submatch of the pattern it matched.
type cpLine struct{ line, sub string }

// cpLines returns every line of logs matching re, in order.
func cpLines(logs, re string) []cpLine {
	rx := regexp.MustCompile(re)
	var out []cpLine
	for _, l := range strings.Split(logs, "\n") {
		if m := rx.FindStringSubmatch(l); m != nil {
			sub := ""
			if len(m) > 1 {
				sub = m[1]
			}
			out = append(out, cpLine{line: l, sub: sub})
		}
	}
	return out
}
