package peers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hangarmesh/hangar/e2e/proc"
	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

const (
	startTimeout = 30 * time.Second
	stopGrace    = 5 * time.Second
)

// env is what starting a peer needs.
type env struct {
	tl    *thirdparty.Tooling // Node 22 and server-everything
	dir   string              // e2e/peers, holding node_modules
	bin   string              // holds hangar-agent
	work  string              // a temporary directory for config files
	echo  io.Writer           // the processes' output, or nil
	nginx string              // the nginx binary, or "" when missing
	seq   int                 // numbers config files
}

// upstreams are the two server-everything (Streamable HTTP) a peer in
// front of HTTP upstreams gets; peers with one upstream use the primary.
type upstreams struct {
	primary, backup *thirdparty.Everything
}

func (u upstreams) stop() {
	for _, e := range []*thirdparty.Everything{u.primary, u.backup} {
		if e != nil {
			_ = syscallCont(e.PID())
			e.Kill()
		}
	}
}

// peer is one way of putting something between the client and
// server-everything.
type peer struct {
	name     string
	what     string // what it is, for the report
	front    transport
	behind   string // what it speaks to the upstream
	failover string // what it does when the primary fails
	stdio    bool   // it spawns server-everything over stdio itself
	path     string // its MCP endpoint path
	// missing says why the peer cannot run here ("" when it can).
	missing func(e *env) string
	// ready, if set, waits until the peer that listens on base (its
	// http://HOST:PORT) can serve.
	ready func(base string, timeout time.Duration) error
	// spec is the process to start, listening on 127.0.0.1:port (or every
	// interface, for peers that cannot bind one).
	spec func(e *env, up upstreams, port int) (proc.Spec, error)
}

// running is a started peer.
type running struct {
	*peer
	p    *proc.Process
	url  string
	up   upstreams
	tool string // the name it lists server-everything's get-sum under
}

// primaryPIDs are the processes that "the primary" is: the HTTP primary
// upstream, or every stdio server-everything the bridge spawned.
func (r *running) primaryPIDs() []int {
	if r.stdio {
		return upstreamChildren(r.p.PID())
	}
	return []int{r.up.primary.PID()}
}

// stop ends the peer's process group (thawed first, in case its stdio
// upstream was frozen).
func (r *running) stop() {
	for _, pid := range upstreamChildren(r.p.PID()) {
		_ = syscallCont(pid)
	}
	_ = r.p.Thaw()
	_ = r.p.Stop(stopGrace)
}

// start starts pe in front of up on a free port and waits until it
// listens.
func (pe *peer) start(e *env, up upstreams) (*running, error) {
	var lastErr error
	for range 5 { // a free port can be taken between the probe and the bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		spec, err := pe.spec(e, up, port)
		if err != nil {
			return nil, err
		}
		spec.Name, spec.Group, spec.Echo = pe.name, true, e.echo
		p, err := proc.Start(spec, 0)
		if err != nil {
			return nil, err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err = waitListening(port, p.Done(), startTimeout); err == nil && pe.ready != nil {
			err = pe.ready(base, startTimeout)
		}
		if err == nil {
			return &running{peer: pe, p: p, up: up, url: base + pe.path}, nil
		}
		_ = p.Stop(stopGrace)
		lastErr = fmt.Errorf("%s: %w; output:\n%s", pe.name, err, tail(p.Output(), 20))
		if !strings.Contains(p.Output(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// everythingStdio is the command line of server-everything over stdio.
func (e *env) everythingStdio() []string {
	return []string{e.tl.Node(), filepath.Join(e.tl.Dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"}
}

// module returns the path of a file of an installed peer package, or an
// error that says how to install it.
func (e *env) module(rel string) (string, error) {
	p := filepath.Join(e.dir, "node_modules", rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing: run %s (make bench-peers does)", p, filepath.Join(e.dir, "install.sh"))
	}
	return p, nil
}

func (e *env) missingModule(rel string) string {
	if _, err := e.module(rel); err != nil {
		return err.Error()
	}
	return ""
}

// writeFile writes a config file into the work directory.
func (e *env) writeFile(name, content string) (string, error) {
	e.seq++
	p := filepath.Join(e.work, fmt.Sprintf("%02d-%s", e.seq, name))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return p, nil
}

func hostPort(ev *thirdparty.Everything) string { return "127.0.0.1:" + strconv.Itoa(ev.Port) }

// allPeers are the peers in the order the report lists them.
func allPeers() []*peer {
	return []*peer{hangarPeer(), nginxPeer(), civicPeer(), mcpHubPeer(), mcpProxyPeer(), supergatewayPeer()}
}

func hangarPeer() *peer {
	return &peer{
		name: "hangar", what: "hangar-agent, front door of a priority pair group",
		front: streamable, behind: "Streamable HTTP, 2 upstreams",
		failover: "priority group: failover to the backup, the client's session moved", path: "/mcp",
		missing: func(e *env) string {
			if _, err := os.Stat(filepath.Join(e.bin, "hangar-agent")); err != nil {
				return fmt.Sprintf("%v (run make build)", err)
			}
			return ""
		},
		spec: func(e *env, up upstreams, port int) (proc.Spec, error) {
			cfg, err := e.writeFile("fleet.yaml", hangarFleet(hostPort(up.primary), hostPort(up.backup)))
			if err != nil {
				return proc.Spec{}, err
			}
			return proc.Spec{Path: filepath.Join(e.bin, "hangar-agent"),
				Args: []string{"--config", cfg, "serve", "--http", "--host", "127.0.0.1", "--port", strconv.Itoa(port)}}, nil
		},
	}
}

// hangarFleet is the failover recipe on two server-everything upstreams,
// the group offered through the front door.
func hangarFleet(primary, backup string) string {
	return fmt.Sprintf(`# hangar-peers: a priority pair of server-everything behind the front door
mcp_servers:
  primary:
    mode: remote
    endpoint: http://%[1]s/mcp
    health_check_interval_s: 2
    max_consecutive_failures: 3
    http: {connect_timeout: 2.0, read_timeout: 10.0}
  backup:
    mode: remote
    endpoint: http://%[2]s/mcp
    health_check_interval_s: 2
    max_consecutive_failures: 3
    http: {connect_timeout: 2.0, read_timeout: 10.0}
  everything:
    mode: group
    strategy: priority
    min_healthy: 1
    tool_access: {mode: front_door}
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
    failover: {attempt_timeout_s: 1.0}
    members:
      - {id: primary, priority: 1}
      - {id: backup, priority: 2}
`, primary, backup)
}

func nginxPeer() *peer {
	return &peer{
		name: "nginx", what: "nginx, plain HTTP reverse proxy (the floor)",
		front: streamable, behind: "HTTP, 2 upstreams (backup server)",
		failover: "proxy_next_upstream to a backup server; MCP sessions are not moved", path: "/mcp",
		missing: func(e *env) string {
			if e.nginx == "" {
				return "nginx is not installed (e2e/peers/install.sh installs the Debian package)"
			}
			return ""
		},
		spec: func(e *env, up upstreams, port int) (proc.Spec, error) {
			dir, err := os.MkdirTemp(e.work, "nginx")
			if err != nil {
				return proc.Spec{}, err
			}
			conf := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(conf, []byte(nginxConf(dir, port, hostPort(up.primary), hostPort(up.backup))), 0o644); err != nil {
				return proc.Spec{}, fmt.Errorf("write nginx.conf: %w", err)
			}
			return proc.Spec{Path: e.nginx, Args: []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}}, nil
		},
	}
}

// nginxConf is nginx as a plain reverse proxy on loopback, in the
// foreground, one worker, with the backup upstream nginx offers: a
// connection error or 1 s without an answer sends the request (POSTs
// included) to the backup, and a failed primary is left alone for 10 s.
func nginxConf(dir string, port int, primary, backup string) string {
	return fmt.Sprintf(`# hangar-peers: nginx as a plain HTTP reverse proxy
daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream everything {
    server %[3]s max_fails=1 fail_timeout=10s;
    server %[4]s backup;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://everything;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_connect_timeout 1s;
      proxy_read_timeout 1s;
      proxy_next_upstream error timeout non_idempotent;
    }
  }
}
`, dir, port, primary, backup)
}

func civicPeer() *peer {
	const cli = "@civic/passthrough-mcp-server/dist/cli.js"
	return &peer{
		name: "civic-passthrough", what: "@civic/passthrough-mcp-server, passthrough proxy with hooks (none set)",
		front: streamable, behind: "Streamable HTTP, 1 upstream",
		failover: "none: one target URL", path: "/mcp",
		missing: func(e *env) string { return e.missingModule(cli) },
		spec: func(e *env, up upstreams, port int) (proc.Spec, error) {
			p, err := e.module(cli)
			return proc.Spec{Path: e.tl.Node(), Args: []string{p},
				Env: []string{"PORT=" + strconv.Itoa(port), "TARGET_SERVER_URL=http://" + hostPort(up.primary)}}, err
		},
	}
}

func mcpHubPeer() *peer {
	const cli = "mcp-hub/dist/cli.js"
	return &peer{
		name: "mcp-hub", what: "mcp-hub, manager with tool routing (tools prefixed with the server's name)",
		front: sse, behind: "Streamable HTTP, 1 upstream (several allowed, each under its own prefix)",
		failover: "none: a server's tools are its own", path: "/mcp",
		missing: func(e *env) string { return e.missingModule(cli) },
		ready:   mcpHubReady,
		spec: func(e *env, up upstreams, port int) (proc.Spec, error) {
			p, err := e.module(cli)
			if err != nil {
				return proc.Spec{}, err
			}
			cfg, err := e.writeFile("mcp-hub.json", fmt.Sprintf(`{"mcpServers": {"everything": {"url": "http://%s/mcp"}}}`, hostPort(up.primary)))
			if err != nil {
				return proc.Spec{}, err
			}
			state := filepath.Join(e.work, "mcp-hub-state")
			return proc.Spec{Path: e.tl.Node(), Args: []string{p, "--port", strconv.Itoa(port), "--config", cfg},
				Env: []string{"XDG_STATE_HOME=" + state, "XDG_CONFIG_HOME=" + state, "HOME=" + state}}, nil
		},
	}
}

// hubServer is a server in mcp-hub's /api/health.
type hubServer struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func (s hubServer) down() bool { return s.Status != "connected" }

// mcpHubReady waits until mcp-hub's /api/health says it is ready with
// every server connected: a client that connects before then meets its
// tools/list_changed notification, and mcp-hub 4.2.1 then overflows its
// stack and drops every client.
func mcpHubReady(base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var h struct {
			State   string      `json:"state"`
			Servers []hubServer `json:"servers"`
		}
		resp, err := http.Get(base + "/api/health")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		if err == nil && h.State == "ready" && len(h.Servers) > 0 &&
			!slices.ContainsFunc(h.Servers, hubServer.down) {
			return nil
		}
		last = fmt.Sprintf("state %q, servers %+v, error %v", h.State, h.Servers, err)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("mcp-hub not ready with its server connected after %s: %s", timeout, last)
}

func mcpProxyPeer() *peer {
	const cli = "mcp-proxy/dist/bin/mcp-proxy.mjs"
	return &peer{
		name: "mcp-proxy", what: "mcp-proxy, stdio server served over HTTP",
		front: streamable, behind: "stdio, 1 child shared by every session", stdio: true,
		failover: "none: one stdio child", path: "/mcp",
		missing: func(e *env) string { return e.missingModule(cli) },
		spec: func(e *env, _ upstreams, port int) (proc.Spec, error) {
			p, err := e.module(cli)
			args := append([]string{p, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--server", "stream", "--"}, e.everythingStdio()...)
			return proc.Spec{Path: e.tl.Node(), Args: args}, err
		},
	}
}

func supergatewayPeer() *peer {
	const cli = "supergateway/dist/index.js"
	return &peer{
		name: "supergateway", what: "supergateway, stdio server served over Streamable HTTP (stateful)",
		front: streamable, behind: "stdio, 1 child per client session", stdio: true,
		failover: "none; a new session spawns a new child", path: "/mcp",
		missing: func(e *env) string { return e.missingModule(cli) },
		spec: func(e *env, _ upstreams, port int) (proc.Spec, error) {
			p, err := e.module(cli)
			args := []string{p, "--stdio", strings.Join(e.everythingStdio(), " "), "--outputTransport", "streamableHttp",
				"--stateful", "--port", strconv.Itoa(port), "--logLevel", "none"}
			return proc.Spec{Path: e.tl.Node(), Args: args}, err
		},
	}
}

// findNginx returns the nginx binary, or "".
func findNginx() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}
