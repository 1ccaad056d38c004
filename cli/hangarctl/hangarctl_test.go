package hangarctl

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/hangarmesh/hangar/internal/testutil"
)

// testdata is absolute so tests may change directory.
var testdata, _ = filepath.Abs("testdata")

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func TestMain(m *testing.M) {
	time.Local = time.UTC // stable clock strings in golden files
	readVersion = func() versionInfo {
		return versionInfo{Version: "v0.4.0-test", Commit: "0123456789abcdef", Date: "2026-12-01T10:00:00Z",
			GoVersion: "go1.26.8", Platform: "linux/amd64"}
	}
	goleak.VerifyTestMain(m)
}

// result is one run of hangarctl.
type result struct {
	code           int
	stdout, stderr string
}

// run runs hangarctl in-process with args and stdin.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr testutil.LogBuffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli/... -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test ./cli/... -update rewrites it):\n%s", path, diff)
	}
}

// tokenFile writes a bearer token to a file and returns its path.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
