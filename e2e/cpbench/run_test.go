package cpbench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary be the control plane's child process, as
// hangar-cpbench's own binary is. The benchmark's goroutines all end with
// Run.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ControlPlaneCommand {
		if err := RunControlPlane(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane with its etcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "cpbench.json")
	var out, errs bytes.Buffer
	if err := Run(ctx, []string{"-agents", "20", "-conns", "2", "-batch", "7", "-rounds", "2", "-replicas", "2", "-steady", "2s", "-json", path}, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	for _, want := range []string{"eject, median round", "memory per agent", "goal ≤ 250 ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Eject) != 2 || rep.EjectMedian.Acked != 20 || rep.EjectMedian.MaxMs <= 0 || rep.Memory.HeapAfterKiB <= 0 {
		t.Errorf("JSON report: %d eject rounds, median %+v, memory %+v; want 2 rounds of 20 ACKs and a heap size",
			len(rep.Eject), rep.EjectMedian, rep.Memory)
	}
}
