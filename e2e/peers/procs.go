package peers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hangarmesh/hangar/e2e/bench"
)

// descendants returns the ids of every live process below pid, read from
// /proc (each process' parent is field 4 of /proc/PID/stat).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces: parse after its ')'.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], id)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// cmdline returns the command line of pid, arguments joined by spaces.
func cmdline(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// isUpstream reports whether pid runs server-everything (a bridge's stdio
// child, not part of the bridge).
func isUpstream(pid int) bool {
	return strings.Contains(cmdline(pid), "server-everything")
}

// upstreamChildren returns the server-everything processes below pid.
func upstreamChildren(pid int) []int {
	var out []int
	for _, c := range descendants(pid) {
		if isUpstream(c) {
			out = append(out, c)
		}
	}
	return out
}

// treeMemory sums the resident memory of pid and its descendants, leaving
// out the upstream servers a bridge spawned (and their own children).
func treeMemory(pid int) (bench.Memory, error) {
	total, err := bench.ReadMemory(pid)
	if err != nil {
		return total, err
	}
	skip := map[int]bool{}
	for _, u := range upstreamChildren(pid) {
		skip[u] = true
		for _, d := range descendants(u) {
			skip[d] = true
		}
	}
	for _, c := range descendants(pid) {
		if skip[c] {
			continue
		}
		m, err := bench.ReadMemory(c)
		if err != nil {
			continue // it exited meanwhile
		}
		total.RSSKiB += m.RSSKiB
		total.PeakKiB += m.PeakKiB
	}
	return total, nil
}

// signalAll sends sig to every pid; it returns an error if none took it.
func signalAll(pids []int, sig syscall.Signal) error {
	if len(pids) == 0 {
		return errors.New("no process to signal")
	}
	var errs []error
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil {
			errs = append(errs, fmt.Errorf("signal %d: %w", p, err))
		}
	}
	if len(errs) == len(pids) {
		return errors.Join(errs...)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until something accepts TCP connections on
// 127.0.0.1:port, or done closes (the process exited), or timeout passes.
func waitListening(port int, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited before it listened on %s", addr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listened on %s after %s: %w", addr, timeout, err)
		}
	}
}

// syscallCont resumes pid if it was stopped.
func syscallCont(pid int) error { return syscall.Kill(pid, syscall.SIGCONT) }
