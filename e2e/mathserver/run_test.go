package mathserver_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

// startBinary starts mcp-math with args and env, and returns the first line
// it prints on stderr. The process is killed when the test ends.
func startBinary(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return firstLine(t, stderr)
}

func firstLine(t *testing.T, r io.Reader) string {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read the status line: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestBinaryHTTPPortZero(t *testing.T) {
	cmd := exec.Command(binary(t), "--port", "0", "--name", "beta", "--fail-tools", "divide", "--fail-mode", "tool")
	cmd.Env = append(os.Environ(), "MCP_HOST=127.0.0.1", "MCP_PORT=8080")
	line := startBinary(t, cmd)
	m := regexp.MustCompile(`^mcp-math listening name=beta addr=(127\.0\.0\.1:(\d+))$`).FindStringSubmatch(line)
	if m == nil || m[2] == "0" {
		t.Fatalf("status line %q, want mcp-math listening name=beta addr=127.0.0.1:PORT", line)
	}
	base := "http://" + m[1]

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.Transport.(*http.Transport).CloseIdleConnections()
	client := mcp.NewClient(&mcp.Implementation{Name: "mathserver-test", Version: "v0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := call(t.Context(), cs, "whoami", nil)
	if err != nil || text(t, res) != "beta" {
		t.Errorf("whoami = %+v, %v; want beta", res, err)
	}
	if res, err := call(t.Context(), cs, "divide", twoPlusForty); err != nil || !res.IsError {
		t.Errorf("divide with --fail-tools divide --fail-mode tool = %+v, %v; want isError", res, err)
	}
	cs.Close()

	st, err := mathserver.NewAdminClient(base).Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "beta" || st.Calls["whoami"] != 1 || st.FailedCalls != 1 {
		t.Errorf("stats = %+v, want name beta, 1 whoami call, 1 failed call", st)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mcp-math after SIGTERM: %v, want exit status 0", err)
	}
}

func TestBinaryStdio(t *testing.T) {
	cmd := exec.Command(binary(t), "--name", "gamma", "--admin-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "MCP_TRANSPORT=stdio")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mathserver-test", Version: "v0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	line := firstLine(t, stderr)
	m := regexp.MustCompile(`^mcp-math ready name=gamma transport=stdio admin=(127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("status line %q, want mcp-math ready name=gamma transport=stdio admin=ADDR", line)
	}

	res, err := call(t.Context(), cs, "add", twoPlusForty)
	if err != nil || text(t, res) != "42" {
		t.Fatalf("add(2, 40) over stdio = %+v, %v; want 42", res, err)
	}
	admin := mathserver.NewAdminClient("http://" + m[1])
	if err := admin.SetFaults(t.Context(), mathserver.Faults{FailTools: []string{"add"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t.Context(), cs, "add", twoPlusForty); rpcCode(err) != -32603 {
		t.Errorf("add after PUT fail_tools [add] = %v, want JSON-RPC error -32603", err)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if !cmd.ProcessState.Success() {
		t.Errorf("mcp-math after stdin closed: %v, want exit status 0", cmd.ProcessState)
	}
}

func TestBinaryBadFlag(t *testing.T) {
	out, err := exec.Command(binary(t), "--port", "eighty").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("mcp-math --port eighty: %v, want a non-zero exit", err)
	}
	if want := `mcp-math: port "eighty"`; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
}
