package gateway

import (
	"net/http"
	"testing"

	"github.com/hangarmesh/hangar/dataplane/upstream"
)

// The front door's Accept and Content-Type checks read media types as
// mime.ParseMediaType does: parameters ignored, case folded.
func TestAccepts(t *testing.T) {
	both := []string{"application/json", "text/event-stream"}
	for _, c := range []struct {
		accept []string
		want   bool
	}{
		{[]string{"application/json, text/event-stream"}, true},
		{[]string{"Application/JSON; q=0.9 ,text/event-stream;q=1"}, true},
		{[]string{"application/json", "text/event-stream"}, true},
		{[]string{"*/*"}, true},
		{[]string{"text/event-stream"}, false},
		{[]string{"application/jsonx, text/event-stream"}, false},
		{[]string{""}, false},
		{nil, false},
	} {
		r := &http.Request{Header: http.Header{"Accept": c.accept}}
		if got := accepts(r, both...); got != c.want {
			t.Errorf("Accept %q: accepts = %v, want %v", c.accept, got, c.want)
		}
	}
	if !accepts(&http.Request{Header: http.Header{"Accept": {"text/event-stream"}}}, "text/event-stream") {
		t.Error("Accept text/event-stream does not accept text/event-stream")
	}
	for ct, want := range map[string]string{"application/json": "application/json", "Application/Json; charset=utf-8": "application/json", " text/plain ": "text/plain", "": ""} {
		if got := upstream.MediaType(ct); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", ct, got, want)
		}
	}
}
