package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

func TestMain(m *testing.M) {
	// A replaced in-process upstream keeps its server-side session reader
	// until the test binary exits: the fixture's goroutine, not the client's.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/modelcontextprotocol/go-sdk/mcp.(*streamableServerConn).Read"))
}

// swappable serves whichever handler is current, so a test can "restart"
// the upstream at the same URL: the new server knows none of the old sessions.
type swappable struct{ h atomic.Value }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.Load().(http.Handler).ServeHTTP(w, r)
}

func newSwappable(t *testing.T) (*swappable, *httptest.Server, func() *mathserver.Server) {
	sw := &swappable{}
	restart := func() *mathserver.Server {
		m := mathserver.New(mathserver.Options{Name: "m"})
		t.Cleanup(func() { m.Close() })
		sw.h.Store(m.Handler())
		return m
	}
	restart()
	ts := httptest.NewServer(sw)
	t.Cleanup(ts.Close)
	return sw, ts, restart
}

func newClient(t *testing.T, url string) *Client {
	c, err := New(&fleetfile.Server{ID: "m", Mode: fleetfile.ModeRemote, Endpoint: url,
		HTTP: fleetfile.HTTPConfig{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A restarted upstream answers 404 for the old session: the call is sent
// again on a new session and succeeds, on both call paths.
func TestSessionLostIsReinitializedAndRetriedOnce(t *testing.T) {
	ctx := context.Background()
	args := json.RawMessage(`{"a":1,"b":2}`)
	paths := map[string]func(c *Client) error{
		"CallTool": func(c *Client) error {
			res, err := c.CallTool(ctx, "add", args)
			if err == nil && res.IsError {
				t.Errorf("add returned a tool error: %+v", res)
			}
			return err
		},
		"Forward": func(c *Client) error {
			reply, err := c.Forward(ctx, "add", json.RawMessage(`{"name":"add","arguments":{"a":1,"b":2}}`))
			if err == nil && reply.IsError {
				t.Errorf("add returned a tool error: %s", reply.Result)
			}
			return err
		},
	}
	for name, call := range paths {
		t.Run(name, func(t *testing.T) {
			_, ts, restart := newSwappable(t)
			c := newClient(t, ts.URL+"/mcp")
			if err := call(c); err != nil {
				t.Fatalf("first call: %v", err)
			}
			fresh := restart()
			if err := call(c); err != nil {
				t.Fatalf("call after the upstream lost the session: %v", err)
			}
			if got := fresh.Stats().Calls["add"]; got != 1 {
				t.Fatalf("the restarted upstream ran add %d times, want once", got)
			}
		})
	}
}

// Probes take the same path: a tools/list on a session the upstream forgot
// opens a new session and lists, and the failure is not reported.
func TestListToolsAfterSessionLost(t *testing.T) {
	_, ts, restart := newSwappable(t)
	c := newClient(t, ts.URL+"/mcp")
	if _, err := c.ListTools(context.Background()); err != nil {
		t.Fatalf("first list: %v", err)
	}
	restart()
	tools, err := c.ListTools(context.Background())
	if err != nil || len(tools) == 0 {
		t.Fatalf("list after the upstream lost the session: %d tools, %v", len(tools), err)
	}
}
