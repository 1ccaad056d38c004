package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

func TestCallBody(t *testing.T) {
	body, err := callBody("add", json.RawMessage(`{"name":"front__add","arguments":{"a":1},"_meta":{"progressToken":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		JSONRPC, Method string
		ID              string
		Params          map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("not JSON: %s: %v", body, err)
	}
	if req.Method != "tools/call" || !strings.HasPrefix(req.ID, "hangar-") || string(req.Params["name"]) != `"add"` ||
		string(req.Params["arguments"]) != `{"a":1}` || string(req.Params["_meta"]) != `{"progressToken":7}` {
		t.Fatalf("request %s: want tools/call of add with a fresh id and the other params kept", body)
	}
	if _, err := callBody("add", json.RawMessage(`[1]`)); err == nil {
		t.Fatal("params that are not an object were accepted")
	}
	noArgs, _ := callBody("whoami", nil)
	if !strings.Contains(string(noArgs), `"arguments":{}`) {
		t.Fatalf("missing arguments not sent as {}: %s", noArgs)
	}
}

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		want      string // raw result
		isError   bool
		wantCode  int64
		wantError string
	}{
		{name: "one event", stream: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\"result\":{\"content\":[]}}\n\n",
			want: `{"content":[]}`},
		{name: "notifications first, CRLF", stream: "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n" +
			"id: 2\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\"result\":{\"isError\":true,\"content\":[]}}\r\n\r\n",
			want: `{"isError":true,"content":[]}`, isError: true},
		{name: "data split over lines", stream: "data: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\ndata: \"result\":{}}\n\n", want: `{}`},
		{name: "no blank line before EOF", stream: "data: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\"result\":{}}", want: `{}`},
		{name: "error answer", stream: "data: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\"error\":{\"code\":-32603,\"message\":\"boom\"}}\n\n", wantCode: -32603},
		{name: "stream ends early", stream: "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n", wantError: "ended before the answer"},
		{name: "malformed", stream: "data: {not json\n\n", wantError: "malformed JSON-RPC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := readSSE("m", strings.NewReader(tt.stream))
			var rpcErr *jsonrpc.Error
			switch {
			case tt.wantCode != 0:
				if !errors.As(err, &rpcErr) || rpcErr.Code != tt.wantCode {
					t.Fatalf("got %v, %v; want JSON-RPC error %d", reply, err, tt.wantCode)
				}
			case tt.wantError != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("got %v, %v; want an error containing %q", reply, err, tt.wantError)
				}
			default:
				if err != nil || string(reply.Result) != tt.want || reply.IsError != tt.isError {
					t.Fatalf("got %+v, %v; want result %s isError=%v", reply, err, tt.want, tt.isError)
				}
			}
		})
	}
}

func TestReadSSELongLine(t *testing.T) {
	big := strings.Repeat("a", 40<<10)
	stream := `data: {"jsonrpc":"2.0","id":"h","result":{"content":[{"type":"text","text":"` + big + `"}]}}` + "\n\n"
	reply, err := readSSE("m", strings.NewReader(stream))
	if err != nil || !strings.Contains(string(reply.Result), big) {
		t.Fatalf("a 40 KiB data line: %v (result %d bytes)", err, func() int {
			if reply == nil {
				return 0
			}
			return len(reply.Result)
		}())
	}
}

// A server that keeps the SSE stream open after the answer (the spec only
// says it SHOULD close it) does not hold the call until the read timeout.
func TestForwardDoesNotWaitOnAnOpenStream(t *testing.T) {
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":\"h\",\"result\":{\"content\":[]}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-released:
		}
	}))
	defer srv.Close()
	defer close(released)
	c := newClient(t, srv.URL)
	c.srv.HTTP.ReadTimeout = time.Minute
	done := make(chan error, 1)
	go func() {
		_, err := c.post(context.Background(), "", "2025-11-25", []byte(`{}`))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("post: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call waited on a stream the server kept open after the answer")
	}
}
