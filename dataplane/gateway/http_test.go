package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

func limitedGateway(t *testing.T, clk clock.Clock, max int) *Gateway {
	t.Helper()
	fleet, err := fleetfile.Parse("test.yaml", []byte(testFleet), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(fleet, router.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := New(r, Options{Clock: clk, MaxSessions: max, SessionIdle: time.Minute})
	t.Cleanup(g.CloseSessions)
	return g
}

func post(h http.Handler, sid, body string, mod func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		r.Header.Set("Mcp-Session-Id", sid)
	}
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func open(t *testing.T, h http.Handler) string {
	t.Helper()
	w := post(h, "", initBody, nil)
	if w.Code != http.StatusOK || w.Header().Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %s", w.Code, w.Body)
	}
	return w.Header().Get("Mcp-Session-Id")
}

// Beyond MaxSessions a new client gets a clear JSON-RPC error and the open
// sessions keep working; idle sessions expire and free their place.
func TestSessionLimitAndExpiry(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	g := limitedGateway(t, clk, 2)
	h := g.HTTPHandler()
	a, b := open(t, h), open(t, h)
	w := post(h, "", initBody, nil)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "too many client sessions") || !strings.Contains(w.Body.String(), `"code":-32000`) {
		t.Fatalf("third session: %d %s, want 503 with a JSON-RPC error naming the limit", w.Code, w.Body)
	}
	for _, sid := range []string{a, b} {
		if w := post(h, sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, nil); w.Code != http.StatusOK {
			t.Fatalf("ping on an open session after the refusal: %d %s", w.Code, w.Body)
		}
	}
	clk.Advance(30 * time.Second)
	post(h, a, `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil) // a is used, b is not
	clk.Advance(45 * time.Second)
	g.expire()
	if w := post(h, b, `{"jsonrpc":"2.0","id":4,"method":"ping"}`, nil); w.Code != http.StatusNotFound {
		t.Errorf("idle session b after 75 s: %d %s, want 404 (expired)", w.Code, w.Body)
	}
	if w := post(h, a, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, nil); w.Code != http.StatusOK {
		t.Errorf("session a used 45 s ago: %d %s, want it open", w.Code, w.Body)
	}
	open(t, h) // b's place is free again
}

// Front-door errors are JSON-RPC error objects; batches are refused from
// 2025-06-18 on; the Content-Type, Accept and MCP-Protocol-Version checks
// apply to every request.
func TestHTTPErrors(t *testing.T) {
	g := limitedGateway(t, clock.Real{}, 10)
	h := g.HTTPHandler()
	sid := open(t, h)
	tests := []struct {
		name string
		body string
		mod  func(*http.Request)
		code int
		rpc  string
	}{
		{"unknown method", `{"jsonrpc":"2.0","id":2,"method":"nope/nothing"}`, nil, http.StatusOK, `"code":-32601`},
		{"batch", `[{"jsonrpc":"2.0","id":2,"method":"ping"}]`, nil, http.StatusBadRequest, "batches are not allowed"},
		{"content type", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType, "Content-Type"},
		{"accept", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, func(r *http.Request) { r.Header.Set("Accept", "application/json") }, http.StatusNotAcceptable, "Accept"},
		{"protocol version", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add"}}`, func(r *http.Request) { r.Header.Set("Mcp-Protocol-Version", "1999-01-01") }, http.StatusBadRequest, "MCP-Protocol-Version"},
		{"no session", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, func(r *http.Request) { r.Header.Del("Mcp-Session-Id") }, http.StatusBadRequest, "Mcp-Session-Id"},
		{"parse error", `{"jsonrpc":`, nil, http.StatusBadRequest, `"code":-32700`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := post(h, sid, tt.body, tt.mod)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.rpc) || !strings.Contains(w.Body.String(), `"jsonrpc":"2.0"`) {
				t.Errorf("%d %s, want %d with a JSON-RPC error mentioning %s", w.Code, w.Body, tt.code, tt.rpc)
			}
		})
	}
}

// 10,000 client sessions opened and expired give back their goroutines and
// memory.
func TestSessionsExpireWithoutLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 sessions")
	}
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	g := limitedGateway(t, clk, 20_000)
	h := g.HTTPHandler()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	for range 10_000 {
		open(t, h)
	}
	if n := g.Sessions(); n != 10_000 {
		t.Fatalf("%d sessions open, want 10000", n)
	}
	runtime.GC()
	var open10k runtime.MemStats
	runtime.ReadMemStats(&open10k)
	t.Logf("an idle client session (no upstream session yet) holds %d bytes", (int64(open10k.HeapAlloc)-int64(before.HeapAlloc))/10_000)
	clk.Advance(2 * time.Minute)
	g.expire()
	if n := g.Sessions(); n != 0 {
		t.Fatalf("%d sessions left after expiry, want 0", n)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("goroutines: %d before, %d after 10,000 sessions expired", goroutines, n)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes after 10,000 sessions expired, want them given back", grown)
	}
	fmt.Fprintf(testWriter{t}, "heap %d → %d bytes, goroutines %d → %d\n", before.HeapAlloc, after.HeapAlloc, goroutines, runtime.NumGoroutine())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// The request limit is the gateway's option (the agent's
// --max-request-bytes): by default a body over 4 MiB gets a clear JSON-RPC
// error naming the limit; raised, the same request is served.
func TestRequestLimitIsTheOption(t *testing.T) {
	big := strings.Replace(initBody, `"clientInfo"`, `"pad":"`+strings.Repeat("x", 5<<20)+`","clientInfo"`, 1)
	for _, tt := range []struct {
		name  string
		limit int64
		want  int
	}{
		{"default", 0, http.StatusRequestEntityTooLarge},
		{"raised to 8 MiB", 8 << 20, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fleet, err := fleetfile.Parse("test.yaml", []byte(testFleet), nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := router.New(fleet, router.Options{})
			if err != nil {
				t.Fatal(err)
			}
			g := New(r, Options{MaxRequestBytes: tt.limit})
			t.Cleanup(g.CloseSessions)
			w := post(g.HTTPHandler(), "", big, nil)
			if w.Code != tt.want {
				t.Fatalf("a %d-byte initialize: HTTP %d %.200s; want %d", len(big), w.Code, w.Body, tt.want)
			}
			if tt.want == http.StatusRequestEntityTooLarge {
				var msg struct {
					Error struct {
						Code    int64
						Message string
					}
				}
				if err := json.Unmarshal(w.Body.Bytes(), &msg); err != nil || msg.Error.Code != jsonrpc.CodeInvalidRequest ||
					!strings.Contains(msg.Error.Message, "4194304 bytes (--max-request-bytes)") {
					t.Fatalf("refusal %s: want a JSON-RPC error naming the limit and the flag", w.Body)
				}
			}
		})
	}
}
