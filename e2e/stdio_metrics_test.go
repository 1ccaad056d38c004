package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStdioMetricsListen: an agent serving MCP on stdio exposes /metrics
// and the health endpoints on --metrics-listen, the metrics count the
// calls made over stdio, and the port closes when stdin does.
func TestStdioMetricsListen(t *testing.T) {
	skipShort(t)
	m := startMath(t, "m1", "")
	cfg := writeConfig(t, fmt.Sprintf("mcp_servers:\n  m1: {mode: remote, endpoint: %s}\n", m.URL()))
	cmd := exec.Command(agentBin, "--config", cfg, "serve", "--metrics-listen", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	var logs strings.Builder
	var mu sync.Mutex
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=metrics_server_started addr=(\S+)`)
		sc := bufio.NewScanner(stderrR)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if mm := re.FindStringSubmatch(sc.Text()); mm != nil {
				addrc <- mm[1]
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-stdio", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close(); _ = stderrW.Close() })
	var addr string
	select {
	case addr = <-addrc:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the agent never said where its metrics are; stderr:\n%s", logs.String())
	}
	base := "http://" + addr
	for _, path := range []string{"/health/live", "/health/ready"} {
		if code, body := fdGet(t, base+path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", path, code, body)
		}
	}
	for range 2 {
		if r, err := callOne(ctx, cs, "m1", "add", map[string]any{"a": 1, "b": 2}); err != nil || !r.Success {
			t.Fatalf("hangar_call over stdio: %+v, %v", r, err)
		}
	}
	code, body := fdGet(t, base+"/metrics")
	want := `mcp_hangar_tool_calls_total{group="",mcp_server="m1",status="success",tool="add"} 2`
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("GET /metrics: %d, want 200 with %q in:\n%s", code, want, body)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close the stdio session: %v", err)
	}
	if err := cmd.Wait(); err != nil && !strings.Contains(err.Error(), "Wait was already called") {
		t.Errorf("the agent did not exit cleanly after stdin closed: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the metrics port %s still accepts connections after the agent exited", addr)
	}
}

// TestStdioMetricsListenBadAddress: an address the agent cannot listen on
// is refused before anything starts, naming the flag.
func TestStdioMetricsListenBadAddress(t *testing.T) {
	skipShort(t)
	cfg := writeConfig(t, "mcp_servers:\n  m1: {mode: remote, endpoint: http://127.0.0.1:1/mcp}\n")
	_, stderr, code := fdRun(t, t.TempDir(), fdEnv(), "--config", cfg, "serve", "--metrics-listen", "127.0.0.1:99999")
	if code != 1 || !strings.Contains(stderr, "--metrics-listen 127.0.0.1:99999") || strings.Contains(stderr, "stdio_server_started") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming --metrics-listen before the stdio server starts", code, stderr)
	}
}
