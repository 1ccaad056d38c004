package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/upstream"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// blackholeDelete is a member that opens sessions but never answers the
// DELETE that closes one (it accepts the connection and stays silent).
func blackholeDelete(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		msg, err := jsonrpc.DecodeMessage(body)
		req, ok := msg.(*jsonrpc.Request)
		if err != nil || !ok || !req.IsCall() {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		// A stateless version: no standalone stream to keep open.
		data, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: req.ID,
			Result: json.RawMessage(`{"protocolVersion":"2026-07-28","capabilities":{},"serverInfo":{"name":"b","version":"1"}}`)})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "s-"+strconv.FormatInt(time.Now().UnixNano(), 10))
		_, _ = w.Write(data)
	}
}

// Shutdown with many client sessions on a member that never answers the
// DELETE takes one shared close timeout, not one per session (100 × 2 s).
func TestCloseSessionsDoesNotWaitPerSessionOnASilentMember(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(blackholeDelete(release))
	defer ts.Close()
	defer close(release)
	m, err := upstream.New(&fleetfile.Server{ID: "b", Mode: fleetfile.ModeRemote, Endpoint: ts.URL,
		HTTP: fleetfile.HTTPConfig{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second}}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := limitedGateway(t, clock.Real{}, 1000)
	const sessions = 100
	for i := range sessions {
		cs := g.newSession("c"+strconv.Itoa(i), nil)
		us, err := m.OpenSession(context.Background(), json.RawMessage(`{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`), nil)
		if err != nil {
			t.Fatalf("open upstream session %d: %v", i, err)
		}
		cs.mu.Lock()
		cs.ups["b"] = us
		cs.mu.Unlock()
	}
	start := time.Now()
	g.CloseSessions()
	took := time.Since(start)
	// One after another, each DELETE would wait its 2 s: 200 s. Together
	// they share one deadline; 30 s leaves room for a loaded machine.
	if took > 30*time.Second {
		t.Fatalf("closing %d sessions on a silent member took %s", sessions, took)
	}
	if n := g.Sessions(); n != 0 {
		t.Fatalf("%d client sessions left open", n)
	}
	t.Logf("closed %d sessions on a silent member in %s", sessions, took.Round(time.Millisecond))
}
