// Package benchreport holds what the benchmark programs' reports share
// (e2e/bench, e2e/cpbench, e2e/peers): writing a report as JSON, the
// machine's load average, a process' memory, sizes in MiB.
package benchreport

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteJSON writes v as indented JSON to path, creating its directory.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// LoadAverage returns the 1-minute load average, or -1 if it is unknown.
func LoadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var v float64
	if _, err := fmt.Sscan(strings.Fields(string(data) + " -1")[0], &v); err != nil {
		return -1
	}
	return v
}

// MiB formats a size given in KiB as MiB with one decimal.
func MiB(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// ProcMemory returns a process' resident set size and its peak, in KiB
// (VmRSS and VmHWM of /proc/PID/status).
func ProcMemory(pid int) (rss, peak int64, err error) {
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
			rss, err = strconv.ParseInt(f[0], 10, 64)
		case "VmHWM":
			peak, err = strconv.ParseInt(f[0], 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read memory of pid %d: %s: %w", pid, key, err)
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("read memory of pid %d: no VmRSS line", pid)
	}
	return rss, peak, nil
}
