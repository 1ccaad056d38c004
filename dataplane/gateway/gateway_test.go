package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// frontDoorGateway returns a gateway whose front_door group has one
// in-process mcp-math member, and a client session to it. With run, the
// router and the gateway run (probes start) until the test ends.
func frontDoorGateway(t *testing.T, run bool) *mcp.ClientSession {
	t.Helper()
	up := mathserver.New(mathserver.Options{Name: "m1", Seed: 1})
	hs := httptest.NewServer(up.Handler())
	fleet, err := fleetfile.Parse("test.yaml", fmt.Appendf(nil, `mcp_servers:
  m1: {mode: remote, endpoint: %s/mcp}
  math: {mode: group, tool_access: {mode: front_door}, members: [{id: m1}]}
`, hs.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(fleet, router.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := New(r, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if run {
		wg.Go(func() { _ = r.Run(ctx) })
		wg.Go(func() { _ = gw.Run(ctx) })
	}
	ct, st := mcp.NewInMemoryTransports()
	conn, err := st.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = gw.ServeConn(ctx, conn) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		<-served
		cancel()
		wg.Wait() // the router closes its upstream sessions
		hs.Close()
		_ = up.Close()
	})
	return cs
}

// A client that lists tools as soon as it connects (right after the agent
// started, before any probe answered) already gets the front-door tools.
func TestFirstToolsListHasFrontDoorTools(t *testing.T) {
	cs := frontDoorGateway(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"add", "whoami", "hangar_call"} {
		if !slices.Contains(names, want) {
			t.Errorf("first tools/list = %v, want %s in it", names, want)
		}
	}
}

// Management tools never wait for the front door's tool discovery.
func TestManagementToolsDoNotWaitForDiscovery(t *testing.T) {
	cs := frontDoorGateway(t, false) // no probes: discovery would wait discoveryWait
	ctx, cancel := context.WithTimeout(context.Background(), discoveryWait/2)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hangar_list"})
	if err != nil || res.IsError {
		t.Fatalf("hangar_list before the first probe: %v %+v", err, res)
	}
}

// The fast path must not skip the SDK's DNS-rebinding check.
func TestRebinding(t *testing.T) {
	tests := []struct {
		local, host string
		want        bool
	}{
		{"127.0.0.1:8000", "127.0.0.1:8000", false},
		{"127.0.0.1:8000", "localhost:8000", false},
		{"[::1]:8000", "[::1]:8000", false},
		{"127.0.0.1:8000", "evil.example", true},
		{"127.0.0.1:8000", "evil.example:8000", true},
		{"[::1]:8000", "evil.example:8000", true},
		{"10.0.0.5:8000", "agent.example:8000", false}, // not loopback: the token guards it
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Host = tt.host
		addr, err := net.ResolveTCPAddr("tcp", tt.local)
		if err != nil {
			t.Fatal(err)
		}
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
		if got := rebinding(r); got != tt.want {
			t.Errorf("rebinding(local %s, Host %s) = %v, want %v", tt.local, tt.host, got, tt.want)
		}
	}
}
