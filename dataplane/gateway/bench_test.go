package gateway

import (
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// The front door's cost per tools/call next to a plain reverse proxy's, in
// one process: run with -bench Path -benchmem (and -cpuprofile to see where
// the time goes). make bench measures the same with separate processes.

func benchClient(b *testing.B, url string) *mcp.ClientSession {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

func runCalls(b *testing.B, cs *mcp.ClientSession) {
	ctx := context.Background()
	args := map[string]any{"a": 1, "b": 2}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: args})
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}

func upstreamServer(b *testing.B) *httptest.Server {
	s := mathserver.New(mathserver.Options{Name: "m"})
	h := httptest.NewServer(s.Handler())
	b.Cleanup(func() { s.Close(); h.Close() })
	return h
}

func BenchmarkPathDirect(b *testing.B) {
	up := upstreamServer(b)
	runCalls(b, benchClient(b, up.URL+"/mcp"))
}

func BenchmarkPathReverseProxy(b *testing.B) {
	up := upstreamServer(b)
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(rp)
	b.Cleanup(front.Close)
	runCalls(b, benchClient(b, front.URL+"/mcp"))
}

func BenchmarkPathFrontDoor(b *testing.B) {
	runCalls(b, benchClient(b, frontDoorServer(b)))
}

// BenchmarkSaturatedFrontDoor keeps 16 client sessions busy at once (the
// saturated run of make bench), for -cpuprofile and -memprofile.
func BenchmarkSaturatedFrontDoor(b *testing.B) {
	url := frontDoorServer(b)
	sessions := make(chan *mcp.ClientSession, 16)
	for range cap(sessions) {
		sessions <- benchClient(b, url)
	}
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cs := <-sessions
		defer func() { sessions <- cs }()
		args := map[string]any{"a": 1, "b": 2}
		for pb.Next() {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "add", Arguments: args})
			if err != nil || res.IsError {
				b.Error(err, res)
				return
			}
		}
	})
}

// frontDoorServer starts an upstream and a front door with one
// front_door group on it, and returns the front door's URL.
func frontDoorServer(b *testing.B) string {
	up := upstreamServer(b)
	f := &fleetfile.Fleet{
		Servers: map[string]*fleetfile.Server{"m": {ID: "m", Mode: fleetfile.ModeRemote, Endpoint: up.URL + "/mcp",
			HealthCheckInterval: time.Hour, MaxConsecutiveFailures: 3,
			HTTP: fleetfile.HTTPConfig{ConnectTimeout: time.Second, ReadTimeout: 10 * time.Second}}},
		Groups: map[string]*fleetfile.Group{"g": {ID: "g", Strategy: fleetfile.StrategyPriority, MinHealthy: 1,
			Members:        []fleetfile.Member{{ID: "m", Priority: 1, Weight: 1}},
			Health:         fleetfile.GroupHealth{UnhealthyThreshold: 2, HealthyThreshold: 1},
			CircuitBreaker: fleetfile.CircuitBreaker{FailureThreshold: 10, ResetTimeout: time.Minute, ProbeCount: 1},
			Failover:       fleetfile.Failover{MaxAttempts: 2},
			ToolAccess:     fleetfile.ToolAccess{Mode: "front_door"}}},
		Order: []string{"m", "g"},
	}
	r, err := router.New(f, router.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	gw := New(r, Options{})
	for deadline := time.Now().Add(5 * time.Second); ; {
		gw.SyncTools()
		if _, ok := gw.frontDoorTool("add"); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("front-door tools never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	front := httptest.NewServer(gw.HTTPHandler())
	b.Cleanup(front.Close)
	return front.URL + "/mcp"
}

func BenchmarkPathHangarCall(b *testing.B) {
	cs := benchClient(b, frontDoorServer(b))
	ctx := context.Background()
	args := map[string]any{"calls": []map[string]any{{"mcp_server": "g", "tool": "add", "arguments": map[string]any{"a": 1, "b": 2}}}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hangar_call", Arguments: args})
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}
