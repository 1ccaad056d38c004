package demo

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
	"time"

	"github.com/hangarmesh/hangar/e2e/proc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	controlPlaneReady = regexp.MustCompile(`msg=controlplane_started (.*)$`)
	agentReady        = regexp.MustCompile(`msg=http_server_started addr=(\S+)`)
)

// controlPlane is a running hangar-controlplane replica on embedded etcd.
type controlPlane struct {
	proc    *proc.Process
	log     *logbook
	dataDir string
	replica string
	grpc    string // host:port the agents connect to
	http    string // host:port of /metrics
}

// startControlPlane starts one replica with embedded etcd in a fresh data
// directory under dir and the fleet file at configPath.
func startControlPlane(bin, dir, configPath string, log *logbook) (*controlPlane, error) {
	dataDir := filepath.Join(dir, "controlplane.etcd")
	if err := os.RemoveAll(dataDir); err != nil { // a previous run's snapshots and agents
		return nil, fmt.Errorf("clear %s: %w", dataDir, err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "hangar-controlplane",
		Path: filepath.Join(bin, "hangar-controlplane"),
		Args: []string{"serve", "--data-dir", dataDir, "--fleet-config", configPath,
			"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"},
		Ready: controlPlaneReady,
		Echo:  log,
	}, startTimeout)
	if err != nil {
		return nil, err
	}
	attrs := parseAttrs(p.Ready())
	cp := &controlPlane{proc: p, log: log, dataDir: dataDir,
		replica: attrs["replica"], grpc: attrs["grpc"], http: attrs["http"]}
	if cp.grpc == "" || cp.http == "" {
		p.Kill()
		return nil, fmt.Errorf("hangar-controlplane's ready line %q names no grpc= or http= address", p.Ready())
	}
	return cp, nil
}

// metrics returns the control plane's unlabelled Prometheus samples, by name.
func (cp *controlPlane) metrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cp.http+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the control plane's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the control plane's metrics: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			samples[name] = v
		}
	}
	return samples, sc.Err()
}

// agent is a running managed hangar-agent serving Streamable HTTP, with
// the demo's client session and the traffic sent through it.
type agent struct {
	name     string // "A" or "B", for the printed lines
	id       string // its --agent-id
	stateDir string
	proc     *proc.Process
	addr     string
	log      *logbook
	cs       *mcp.ClientSession
	traffic  *traffic
}

// startAgent starts hangar-agent managed by the control plane at cpAddr,
// without a fleet file of its own, with a fresh state directory under dir.
func startAgent(bin, dir, name, cpAddr string, log *logbook) (*agent, error) {
	a := &agent{name: name, id: "agent-" + strings.ToLower(name), log: log}
	a.stateDir = filepath.Join(dir, a.id+".state")
	if err := os.RemoveAll(a.stateDir); err != nil { // a previous run's snapshot
		return nil, fmt.Errorf("clear %s: %w", a.stateDir, err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "hangar-agent " + a.id,
		Path: filepath.Join(bin, "hangar-agent"),
		Args: []string{"serve", "--http", "--port", "0", "--control-plane", cpAddr,
			"--agent-id", a.id, "--state-dir", a.stateDir},
		Ready: agentReady,
		Echo:  log,
	}, startTimeout)
	if err != nil {
		return nil, err
	}
	a.proc, a.addr = p, p.Ready()
	return a, nil
}

// ready reports whether the agent's /health/ready answers 200.
func (a *agent) ready() (bool, error) {
	resp, err := http.Get("http://" + a.addr + "/health/ready")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, fmt.Errorf("/health/ready answers %s", resp.Status)
}

// url is the agent's MCP endpoint.
func (a *agent) url() string { return "http://" + a.addr + "/mcp" }

// label names the agent in printed lines.
func (a *agent) label() string { return "agent " + a.name }

// saveLog writes everything p printed to dir/name.log.
func saveLog(out *console, p *proc.Process, dir, name string) {
	path := filepath.Join(dir, name+".log")
	if err := os.WriteFile(path, []byte(p.Output()), 0o644); err != nil {
		out.say("could not save %s's log: %v", name, err)
	}
}
