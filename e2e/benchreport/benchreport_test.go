package benchreport

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "report.json")
	if err := WriteJSON(path, map[string]int{"agents": 3}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := json.Unmarshal(data, &got); err != nil || got["agents"] != 3 {
		t.Errorf("read back %q: %v, %v", data, got, err)
	}
	if err := WriteJSON(path, func() {}); err == nil {
		t.Error("WriteJSON of a func: no error")
	}
}

func TestMiBAndLoad(t *testing.T) {
	if got := MiB(1536); got != "1.5 MiB" {
		t.Errorf("MiB(1536) = %q", got)
	}
	if _, err := os.Stat("/proc/loadavg"); err == nil && LoadAverage() < 0 {
		t.Error("LoadAverage() < 0 with /proc/loadavg present")
	}
}

func TestProcMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc here")
	}
	rss, peak, err := ProcMemory(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("ProcMemory(self) = %d, %d, %v; want 0 < rss <= peak", rss, peak, err)
	}
	if _, _, err := ProcMemory(-1); err == nil {
		t.Error("ProcMemory(-1): no error")
	}
}
