package mathserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if bin.dir != "" {
			os.RemoveAll(bin.dir)
		}
		os.Exit(code)
	}))
}

// binary builds cmd/mcp-math once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "mcp-math-test")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "mcp-math")
		out, err := exec.Command("go", "build", "-o", bin.path, "github.com/hangarmesh/hangar/e2e/cmd/mcp-math").CombinedOutput()
		if err != nil {
			bin.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// fixture is an in-process server behind httptest with one client session.
type fixture struct {
	srv     *mathserver.Server
	url     string // the server root; the MCP endpoint is url + "/mcp"
	session *mcp.ClientSession
}

// start serves a new Server and connects a client to it. The session is
// closed before the HTTP server, or Close would wait on the SSE stream.
func start(t *testing.T, opts mathserver.Options) *fixture {
	t.Helper()
	srv := mathserver.New(opts)
	url := newHTTPTest(t, srv)
	return &fixture{srv: srv, url: url, session: connect(t, url+mathserver.MCPPath)}
}

// newHTTPTest serves srv.Handler() until the test ends and returns its URL.
func newHTTPTest(t *testing.T, srv *mathserver.Server) string {
	t.Helper()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// hostClient is an HTTP client that sends every request with Host host.
func hostClient(host string) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Host = host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func connect(t *testing.T, endpoint string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "mathserver-test", Version: "v0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func setFaults(t *testing.T, srv *mathserver.Server, f mathserver.Faults) {
	t.Helper()
	if err := srv.SetFaults(f); err != nil {
		t.Fatalf("SetFaults(%+v): %v", f, err)
	}
}

func call(ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	return cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
}

// text returns the text content of res.
func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var parts []string
	for _, c := range res.Content {
		tc, ok := c.(*mcp.TextContent)
		if !ok {
			t.Fatalf("content %T, want *mcp.TextContent", c)
		}
		parts = append(parts, tc.Text)
	}
	return strings.Join(parts, "")
}

// rpcCode returns the JSON-RPC error code carried by err, or 0.
func rpcCode(err error) int64 {
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr.Code
	}
	return 0
}
