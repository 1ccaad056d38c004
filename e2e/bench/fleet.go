package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/hangarmesh/hangar/e2e/benchreport"
	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// Member ids in the fleet file.
const (
	primaryID = "my-mcp"
	backupID  = "my-mcp-backup"
	groupID   = "my-mcp-group"
)

const (
	startTimeout = 20 * time.Second
	stopGrace    = 10 * time.Second
)

var (
	mathReady  = regexp.MustCompile(`mcp-math listening name=\S+ addr=(\S+)`)
	agentReady = regexp.MustCompile(`msg=http_server_started addr=(\S+)`)
)

// fleet is the processes (and the reverse proxy) one run measures.
type fleet struct {
	primary, backup *proc.Process
	agent           *proc.Process
	proxy           *reverseProxy
	primaryAdmin    *mathserver.AdminClient
	backupAdmin     *mathserver.AdminClient
	dir             string // temp dir of the fleet file
}

func (f *fleet) directURL() string { return "http://" + f.primary.Ready() + mathserver.MCPPath }
func (f *fleet) proxyURL() string  { return "http://" + f.proxy.addr + mathserver.MCPPath }
func (f *fleet) agentURL() string  { return "http://" + f.agent.Ready() + "/mcp" }

// startFleet starts both upstreams, the agent and the reverse proxy. On
// error everything started so far is stopped.
func startFleet(o Options, echo io.Writer) (_ *fleet, err error) {
	f := &fleet{}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	if f.primary, err = startMath(o.BinDir, primaryID, echo); err != nil {
		return f, err
	}
	if f.backup, err = startMath(o.BinDir, backupID, echo); err != nil {
		return f, err
	}
	f.primaryAdmin = mathserver.NewAdminClient("http://" + f.primary.Ready())
	f.backupAdmin = mathserver.NewAdminClient("http://" + f.backup.Ready())
	if f.dir, err = os.MkdirTemp("", "hangar-bench"); err != nil {
		return f, err
	}
	cfg := filepath.Join(f.dir, "fleet.yaml")
	if err := os.WriteFile(cfg, []byte(fleetYAML(f.primary.Ready(), f.backup.Ready())), 0o644); err != nil {
		return f, fmt.Errorf("write fleet file: %w", err)
	}
	f.agent, err = proc.Start(proc.Spec{
		Name: "hangar-agent", Path: filepath.Join(o.BinDir, "hangar-agent"),
		Args:  []string{"--config", cfg, "serve", "--http", "--host", "127.0.0.1", "--port", "0"},
		Ready: agentReady, Echo: echo,
	}, startTimeout)
	if err != nil {
		return f, err
	}
	f.proxy, err = startReverseProxy(f.primary.Ready(), 2*o.Clients+8, echo)
	return f, err
}

func startMath(binDir, name string, echo io.Writer) (*proc.Process, error) {
	return proc.Start(proc.Spec{
		Name: "mcp-math " + name, Path: filepath.Join(binDir, "mcp-math"),
		Args:  []string{"--name", name, "--host", "127.0.0.1", "--port", "0", "--seed", "1"},
		Ready: mathReady, Echo: echo,
	}, startTimeout)
}

// fleetYAML is recipe 04 (failover) on the given upstreams, with the
// group's tools also offered through the front door.
func fleetYAML(primary, backup string) string {
	return fmt.Sprintf(`# hangar-bench: recipe 04 (failover) with a front door
mcp_servers:
  %[1]s:
    mode: remote
    endpoint: http://%[3]s/mcp
    description: "Primary MCP server"
    health_check_interval_s: 2
    max_consecutive_failures: 3
    http: {connect_timeout: 2.0, read_timeout: 10.0}
  %[2]s:
    mode: remote
    endpoint: http://%[4]s/mcp
    description: "Backup MCP server"
    health_check_interval_s: 2
    max_consecutive_failures: 3
    http: {connect_timeout: 2.0, read_timeout: 10.0}
  %[5]s:
    mode: group
    description: "Primary/backup MCP failover"
    strategy: priority
    min_healthy: 1
    tool_access: {mode: front_door}
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
    members:
      - {id: %[1]s, priority: 1}
      - {id: %[2]s, priority: 2}
`, primaryID, backupID, primary, backup, groupID)
}

// stop ends every process the fleet started; it may be called more than
// once and on a fleet that started only partly.
func (f *fleet) stop() {
	if f.proxy != nil {
		f.proxy.close()
		f.proxy = nil
	}
	if f.agent != nil {
		_ = f.agent.Stop(stopGrace) // a report, not a test: an unclean stop is not news here
	}
	for _, p := range []*proc.Process{f.primary, f.backup} {
		if p != nil && !p.Exited() {
			p.Kill()
		}
	}
	if f.dir != "" {
		_ = os.RemoveAll(f.dir)
	}
}

// reverseProxy is an httputil.ReverseProxy in a process of its own (this
// program re-run as "hangar-bench reverse-proxy"), the yardstick for what a
// proxy hop between processes costs.
type reverseProxy struct {
	addr string
	p    *proc.Process
}

var proxyReady = regexp.MustCompile(`reverse-proxy listening addr=(\S+)`)

func startReverseProxy(upstream string, idleConns int, echo io.Writer) (*reverseProxy, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("reverse proxy: find this program: %w", err)
	}
	p, err := proc.Start(proc.Spec{
		Name: "reverse-proxy", Path: self,
		Args:  []string{"reverse-proxy", "-upstream", upstream, "-idle", fmt.Sprint(idleConns)},
		Ready: proxyReady, Echo: echo,
	}, startTimeout)
	if err != nil {
		return nil, err
	}
	return &reverseProxy{addr: p.Ready(), p: p}, nil
}

func (p *reverseProxy) close() { _ = p.p.Stop(stopGrace) }

// RunProxy is "hangar-bench reverse-proxy -upstream HOST:PORT": a plain
// httputil.ReverseProxy on a free loopback port until ctx ends.
func RunProxy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("reverse-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstream := fs.String("upstream", "", "HOST:PORT of the upstream")
	idle := fs.Int("idle", 64, "idle connections kept to the upstream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return errors.New("reverse-proxy: -upstream HOST:PORT is required")
	}
	rp := newReverseProxy(&url.URL{Scheme: "http", Host: *upstream}, *idle, log.New(stderr, "reverse-proxy: ", 0))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("reverse proxy: listen: %w", err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "reverse-proxy listening addr=%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newReverseProxy is the yardstick proxy: httputil.ReverseProxy to target,
// keeping idle connections to it.
func newReverseProxy(target *url.URL, idle int, logger *log.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		// SetURL also sends the upstream's own Host, which the SDK's
		// DNS-rebinding protection requires.
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: time.Minute},
		ErrorLog:  logger,
	}
}

// memory is a process' resident set size, in KiB, from /proc/PID/status.
type memory struct {
	RSSKiB  int64 `json:"rss_kib"`  // VmRSS
	PeakKiB int64 `json:"peak_kib"` // VmHWM
}

func readMemory(pid int) (memory, error) {
	rss, peak, err := benchreport.ProcMemory(pid)
	return memory{RSSKiB: rss, PeakKiB: peak}, err
}

// loadAverage returns the 1-minute load average, or -1 if it is unknown.
func loadAverage() float64 { return benchreport.LoadAverage() }
