package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/outcome"
)

// dropOnce is a member that runs every request it reads, but drops the
// connection of the first request of each method in drop instead of
// answering it: the request reached the member, the answer never came back.
type dropOnce struct {
	mu      sync.Mutex
	drop    map[string]bool
	counts  map[string]int
	version string
}

func (d *dropOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	msg, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok || !req.IsCall() {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	d.mu.Lock()
	d.counts[req.Method]++
	dropIt := d.drop[req.Method]
	d.drop[req.Method] = false
	d.mu.Unlock()
	if dropIt {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	result := json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`)
	if req.Method == "initialize" {
		result = json.RawMessage(`{"protocolVersion":"` + d.version + `","capabilities":{},"serverInfo":{"name":"d","version":"1"}}`)
	}
	data, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: req.ID, Result: result})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Mcp-Session-Id", "s1")
	_, _ = w.Write(data)
}

func (d *dropOnce) count(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[method]
}

// A request the member read on a kept-alive connection that then broke
// may have run: a tools/call not marked repeatable is never sent again by
// the transport (the member would run it twice), while a repeatable one is.
func TestBrokenConnectionResendsOnlyRepeatableRequests(t *testing.T) {
	for _, tt := range []struct {
		name       string
		repeatable bool
		wantRuns   int
	}{
		{"not repeatable", false, 1},
		{"repeatable", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// No standalone stream (stateless version): the call reuses the
			// connection initialize left idle.
			d := &dropOnce{drop: map[string]bool{"tools/call": true}, counts: map[string]int{}, version: statelessFrom}
			ts := httptest.NewServer(d)
			defer ts.Close()
			c := newClient(t, ts.URL)
			s, err := c.OpenSession(context.Background(), json.RawMessage(`{"protocolVersion":"`+statelessFrom+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`), nil)
			if err != nil {
				t.Fatalf("open session: %v", err)
			}
			defer s.Close()
			_, err = s.CallOnce(context.Background(), "tools/call", json.RawMessage(`{"name":"charge","arguments":{}}`), nil, tt.repeatable)
			if got := d.count("tools/call"); got != tt.wantRuns {
				t.Fatalf("the member read tools/call %d times (call error: %v), want %d", got, err, tt.wantRuns)
			}
			if tt.repeatable && err != nil {
				t.Fatalf("a repeatable call was not sent again after the connection broke: %v", err)
			}
			if !tt.repeatable && (err == nil || outcome.Classify(nil, err) == outcome.ConnectError) {
				t.Fatalf("a call whose answer was lost: %v (class %s), want an error that does not say it was never delivered",
					err, outcome.Classify(nil, err))
			}
		})
	}
}
