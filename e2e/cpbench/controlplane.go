package cpbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hangarmesh/hangar/controlplane/daemon"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// ControlPlaneCommand is the first argument that makes hangar-cpbench run
// the replica under test (in the child process) instead of the benchmark.
const ControlPlaneCommand = "controlplane"

// RunControlPlane runs `hangar-controlplane serve args...` until ctx ends or
// stdin is closed. Each line "heap ID" on stdin forces a GC and answers on
// stdout with "heap ID inuse=BYTES": the heap and goroutine stacks in use,
// which the benchmark cannot read from outside the process. "profile FILE" starts a CPU profile
// written until stdin closes.
func RunControlPlane(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var err error
	// Ends with stdin: the parent closes it to stop this process.
	go func() {
		defer cancel()
		sc := bufio.NewScanner(stdin)
		var profile *os.File
		for sc.Scan() {
			cmd, arg, _ := strings.Cut(sc.Text(), " ")
			switch cmd {
			case "heap":
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(stdout, "heap %s inuse=%d\n", arg, ms.HeapInuse+ms.StackInuse)
			case "profile":
				if profile, err = startProfile(arg); err != nil {
					fmt.Fprintf(stderr, "cpu profile: %v\n", err)
				}
			}
		}
		if profile != nil {
			pprof.StopCPUProfile()
			profile.Close()
		}
	}()
	err = daemon.Run(ctx, append([]string{"serve"}, args...), io.Discard, stderr)
	if daemon.ExitCode(err) == 0 {
		return nil
	}
	return err
}

func startProfile(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// controlPlane is the replica under test, in its child process.
type controlPlane struct {
	p       *proc.Process
	stdin   *io.PipeWriter
	addr    string // gRPC
	dataDir string
	queries int
}

var (
	readyLine = regexp.MustCompile(`msg=controlplane_started .*grpc=(\S+)`)
	heapLine  = regexp.MustCompile(`^heap (\d+) inuse=(\d+)$`)
)

// startControlPlane starts the replica with the fleet file in dir.
func startControlPlane(dir string, echo io.Writer) (*controlPlane, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find my own binary to run the control plane: %w", err)
	}
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(fleetYAML), 0o644); err != nil {
		return nil, err
	}
	cp := &controlPlane{dataDir: filepath.Join(dir, "etcd")}
	pr, pw := io.Pipe()
	cp.stdin = pw
	cp.p, err = proc.Start(proc.Spec{
		Name: "controlplane", Path: exe, Stdin: pr, Ready: readyLine, Echo: echo,
		Args: []string{ControlPlaneCommand, "--name", "cpbench", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--data-dir", cp.dataDir, "--fleet-config", fleet},
	}, 30*time.Second)
	if err != nil {
		pw.Close()
		return nil, err
	}
	cp.addr = cp.p.Ready()
	return cp, nil
}

// heapInUse returns the replica's heap and stacks in use after a forced GC,
// in bytes.
func (cp *controlPlane) heapInUse(ctx context.Context) (int64, error) {
	cp.queries++
	id := strconv.Itoa(cp.queries)
	if _, err := fmt.Fprintf(cp.stdin, "heap %s\n", id); err != nil {
		return 0, fmt.Errorf("ask the control plane for its heap: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	line, err := cp.p.WaitFor(ctx, regexp.MustCompile(`^heap `+id+` `))
	if err != nil {
		return 0, err
	}
	m := heapLine.FindStringSubmatch(line)
	if m == nil {
		return 0, fmt.Errorf("control plane answered %q", line)
	}
	return strconv.ParseInt(m[2], 10, 64)
}

// profile starts a CPU profile of the replica, written to path when it
// stops.
func (cp *controlPlane) profile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(cp.stdin, "profile %s\n", abs)
	return err
}

// stop closes the replica's stdin (it shuts down as on SIGTERM) and waits.
func (cp *controlPlane) stop() error {
	cp.stdin.Close()
	select {
	case <-cp.p.Done():
		return nil
	case <-time.After(15 * time.Second):
		return cp.p.Stop(5 * time.Second)
	}
}

// dbSize is the size of etcd's database file, in KiB; -1 if unknown.
func (cp *controlPlane) dbSize() int64 {
	fi, err := os.Stat(filepath.Join(cp.dataDir, "member", "snap", "db"))
	if err != nil {
		return -1
	}
	return fi.Size() >> 10
}

var errNoVmRSS = errors.New("no VmRSS line")

// rss returns a process' resident set size and its peak, in KiB.
func rss(pid int) (cur, peak int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, _ := strings.Cut(line, ":")
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch key {
		case "VmRSS":
			cur, err = strconv.ParseInt(f[0], 10, 64)
		case "VmHWM":
			peak, err = strconv.ParseInt(f[0], 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read memory of pid %d: %s: %w", pid, key, err)
		}
	}
	if cur == 0 {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, errNoVmRSS)
	}
	return cur, peak, nil
}

// fleetYAML is the failover recipe (dataplane/config/testdata/recipes/
// 04-failover.yaml) without its comments. The endpoints are never called.
const fleetYAML = `mcp_servers:
  my-mcp:
    mode: remote
    endpoint: http://localhost:8080/mcp
    description: "Primary MCP server"
    health_check_interval_s: 30
    max_consecutive_failures: 3
    http: {connect_timeout: 10.0, read_timeout: 30.0}
  my-mcp-backup:
    mode: remote
    endpoint: http://localhost:8081/mcp
    description: "Backup MCP server"
    health_check_interval_s: 30
    max_consecutive_failures: 3
    http: {connect_timeout: 10.0, read_timeout: 30.0}
  my-mcp-group:
    mode: group
    description: "Primary/backup MCP failover"
    strategy: priority
    min_healthy: 1
    circuit_breaker: {failure_threshold: 3, reset_timeout_s: 30}
    members:
      - {id: my-mcp, priority: 1}
      - {id: my-mcp-backup, priority: 2}
`
