package cpbench

import (
	"bufio"
	"bytes"
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
	"github.com/hangarmesh/hangar/e2e/benchreport"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// ControlPlaneCommand is the first argument that makes hangar-cpbench run
// the replica under test (in the child process) instead of the benchmark.
const ControlPlaneCommand = "controlplane"

// RunControlPlane runs `hangar-controlplane serve args...` until ctx ends or
// stdin is closed. Each line "heap ID" on stdin forces a GC and answers on
// stdout with "heap ID inuse=BYTES stacks=BYTES goroutines=N": the heap and goroutine stacks in use (and the stacks alone),
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
				fmt.Fprintf(stdout, "heap %s inuse=%d stacks=%d goroutines=%d\n", arg, ms.HeapInuse+ms.StackInuse, ms.StackInuse, runtime.NumGoroutine())
			case "heapprofile":
				runtime.GC()
				if err := writeHeapProfile(arg); err != nil {
					fmt.Fprintf(stderr, "heap profile: %v\n", err)
				}
				fmt.Fprintf(stdout, "heapprofile done\n")
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

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

// controlPlane is one replica under test, in its child process.
type controlPlane struct {
	name    string
	p       *proc.Process
	stdin   *io.PipeWriter
	addr    string // gRPC
	etcd    string // etcd client endpoints, as the replica uses them
	dataDir string
	queries int
	// stacks and goroutines are the last heapInUse's goroutine stacks in
	// use (bytes) and goroutines.
	stacks     int64
	goroutines int
}

var (
	readyLine = regexp.MustCompile(`msg=controlplane_started .*grpc=(\S+)`)
	etcdLine  = regexp.MustCompile(`msg=controlplane_started .*etcd=(\S+)`)
	heapLine  = regexp.MustCompile(`^heap (\d+) inuse=(\d+) stacks=(\d+) goroutines=(\d+)$`)
)

// startControlPlane starts replica name with the fleet file at fleet: on
// its own embedded etcd in dir if etcd is "", else on that etcd.
func startControlPlane(dir, name, fleet, etcd string, echo io.Writer) (*controlPlane, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find my own binary to run the control plane: %w", err)
	}
	cp := &controlPlane{name: name, dataDir: filepath.Join(dir, "etcd")}
	args := []string{ControlPlaneCommand, "--name", name, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--fleet-config", fleet}
	if etcd == "" {
		args = append(args, "--data-dir", cp.dataDir)
	} else {
		args = append(args, "--etcd-endpoints", etcd)
	}
	pr, pw := io.Pipe()
	cp.stdin = pw
	cp.p, err = proc.Start(proc.Spec{Name: name, Path: exe, Stdin: pr, Ready: readyLine, Echo: echo, Args: args}, 30*time.Second)
	if err != nil {
		pw.Close()
		return nil, err
	}
	cp.addr = cp.p.Ready()
	if m := etcdLine.FindStringSubmatch(cp.p.Output()); m != nil {
		cp.etcd = m[1]
	}
	return cp, nil
}

// cpuSeconds returns the user and system CPU time the replica used so far.
func (cp *controlPlane) cpuSeconds() (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cp.p.PID()))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of %s: %w", cp.name, err)
	}
	// Fields after the command name (which ends with ')'): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("read CPU time of %s: short /proc stat", cp.name)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read CPU time of %s: %w", cp.name, err)
	}
	return (utime + stime) / 100, nil
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
	cp.stacks, _ = strconv.ParseInt(m[3], 10, 64)
	cp.goroutines, _ = strconv.Atoi(m[4])
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

// heapProfile writes a heap profile of the replica to path, after GC.
func (cp *controlPlane) heapProfile(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(cp.stdin, "heapprofile %s\n", abs); err != nil {
		return fmt.Errorf("ask the control plane for a heap profile: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = cp.p.WaitFor(ctx, regexp.MustCompile(`^heapprofile done`))
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

// rss returns a process' resident set size and its peak, in KiB.
func rss(pid int) (cur, peak int64, err error) { return benchreport.ProcMemory(pid) }

// fleetYAML is the failover recipe (internal/fleetfile/testdata/recipes/
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

// memory returns the replica's heap and stacks in use after GC and its RSS,
// in KiB.
func (cp *controlPlane) memory(ctx context.Context) (heapKiB, rssKiB int64, err error) {
	heap, err := cp.heapInUse(ctx)
	if err != nil {
		return 0, 0, err
	}
	cur, _, err := rss(cp.p.PID())
	return heap >> 10, cur, err
}
