package agent

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testToken = "0123456789abcdef-token"

// testDoor serves h behind the front door's middleware on a real listener,
// with the http.Server settings serveHTTP uses.
func testDoor(t *testing.T, l Limits, h http.Handler) (*httptest.Server, *doorMetrics) {
	t.Helper()
	m := newDoorMetrics(prometheus.NewRegistry(), l.MaxConnections)
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewUnstartedServer(newRateLimit(l, m).wrap(requireToken(testToken, m,
		limitBody(l, m, log, capResponse(l.MaxResponseBytes, m, log, h)))))
	srv.Config.ReadHeaderTimeout, srv.Config.IdleTimeout = l.ReadHeaderTimeout, l.IdleTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, m
}

// rawRequest writes req on a new connection and reads one response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A safety net only: without the behaviour under test the server
	// would hold the connection for an hour.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, conn
}

func slowLimits() Limits {
	l := DefaultLimits
	l.BodyTimeout = time.Hour
	return l
}

func TestUnauthorizedBodyIsNeverAwaited(t *testing.T) {
	reached := false
	srv, m := testDoor(t, slowLimits(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	addr := srv.Listener.Addr().String()
	for name, auth := range map[string]string{
		"no token":    "",
		"wrong token": "Authorization: Bearer wrong-token-0123456789\r\n",
		"basic":       "Authorization: Basic " + testToken + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			// The body is declared and never sent.
			resp, conn := rawRequest(t, addr, "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"+
				auth+"Content-Length: 100000\r\n\r\n")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("status %d, WWW-Authenticate %q; want 401 asking for a bearer token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(string(body), `"code":-32001`) || !strings.Contains(string(body), "Authorization: Bearer") {
				t.Errorf("body %s; want a JSON-RPC error saying how to authenticate", body)
			}
			// The server closed the connection instead of reading on.
			if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("after the 401: read %d, %v; want EOF (connection closed)", n, err)
			}
		})
	}
	if reached {
		t.Error("an unauthenticated request reached the handler")
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("unauthorized")); got != 3 {
		t.Errorf("rejected{unauthorized} = %v, want 3", got)
	}
}

func TestBearerSchemeAnyCase(t *testing.T) {
	srv, _ := testDoor(t, DefaultLimits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader("ping"))
		req.Header.Set("Authorization", scheme+" "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ping" {
			t.Errorf("scheme %q: %d %q, want 200 ping", scheme, resp.StatusCode, body)
		}
	}
}

func TestRequestSizeLimit(t *testing.T) {
	l := slowLimits()
	l.MaxRequestBytes = 1024
	var readErr error
	srv, m := testDoor(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
		if readErr != nil {
			http.Error(w, readErr.Error(), http.StatusRequestEntityTooLarge)
		}
	}))
	auth := "Authorization: Bearer " + testToken + "\r\n"
	t.Run("declared too large", func(t *testing.T) {
		resp, _ := rawRequest(t, srv.Listener.Addr().String(), "POST /mcp HTTP/1.1\r\nHost: a\r\n"+auth+"Content-Length: 1025\r\n\r\n")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "--max-request-bytes") {
			t.Errorf("%d %s; want 413 naming --max-request-bytes", resp.StatusCode, body)
		}
		if got := testutil.ToFloat64(m.rejected.WithLabelValues("request_too_large")); got != 1 {
			t.Errorf("rejected{request_too_large} = %v, want 1", got)
		}
	})
	t.Run("chunked past the limit", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", io.NopCloser(strings.NewReader(strings.Repeat("x", 4096))))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || readErr == nil {
			t.Errorf("%d, handler read error %v; want 413 and a read error", resp.StatusCode, readErr)
		}
	})
}

func TestBodyTimeout(t *testing.T) {
	l := DefaultLimits
	l.BodyTimeout = 50 * time.Millisecond
	readErr := make(chan error, 1)
	srv, m := testDoor(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	// Headers with a valid token, then 10 of the 100 bytes declared.
	resp, _ := rawRequest(t, srv.Listener.Addr().String(), "POST /mcp HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "+testToken+
		"\r\nContent-Length: 100\r\n\r\n0123456789")
	_ = resp
	if err := <-readErr; err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("handler read = %v, want a timeout", err)
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("body_timeout")); got != 1 {
		t.Errorf("rejected{body_timeout} = %v, want 1", got)
	}
}

// A slow call after its body was read is not cut by the body deadline.
func TestBodyDeadlineLiftedAfterBody(t *testing.T) {
	l := DefaultLimits
	l.BodyTimeout = 20 * time.Millisecond
	srv, _ := testDoor(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-time.After(10 * l.BodyTimeout): // a call longer than the body deadline
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusInternalServerError)
		}
	}))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "done" {
		t.Errorf("slow call: %d %q, want done", resp.StatusCode, body)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	l := DefaultLimits
	l.MaxResponseBytes = 1024
	srv, m := testDoor(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 2048
		if r.URL.Query().Get("stream") != "" {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("a", 1000)))
			http.NewResponseController(w).Flush()
		}
		_, _ = w.Write([]byte(strings.Repeat("b", n)))
	}))
	post := func(url string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	resp, body, err := post(srv.URL + "/mcp")
	if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "--max-response-bytes") {
		t.Errorf("one large write: %v %v %s; want 502 naming --max-response-bytes", resp, err, body)
	}
	// Once bytes went out, the connection is cut: no truncated success.
	if _, body, err := post(srv.URL + "/mcp?stream=1"); err == nil {
		t.Errorf("streamed past the limit: read %d bytes without an error", len(body))
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("response_too_large")); got != 2 {
		t.Errorf("rejected{response_too_large} = %v, want 2", got)
	}
}

func TestRateLimit(t *testing.T) {
	l := DefaultLimits
	l.RateLimit, l.RateBurst = 2, 3
	rl := newRateLimit(l, newDoorMetrics(prometheus.NewRegistry(), 1))
	t0 := time.Unix(1000, 0)
	var got []bool
	for _, at := range []time.Duration{0, 0, 0, 0, 400 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond} {
		got = append(got, rl.allow("10.0.0.1", t0.Add(at)))
	}
	want := []bool{true, true, true, false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allow sequence = %v, want %v", got, want)
		}
	}
	if !rl.allow("10.0.0.2", t0) {
		t.Error("another client was limited by the first one's use")
	}
	// Full buckets are forgotten; a busy one is kept.
	rl.forgetFull(t0.Add(time.Minute))
	if len(rl.clients) != 0 {
		t.Errorf("after a quiet minute %d buckets remain, want 0", len(rl.clients))
	}

	// Over HTTP: 429 with Retry-After and a JSON-RPC error.
	srv, _ := testDoor(t, Limits{ReadHeaderTimeout: time.Second, BodyTimeout: time.Second, IdleTimeout: time.Second,
		MaxConnections: 8, MaxRequestBytes: 1 << 20, MaxResponseBytes: 1 << 20, RateLimit: 0.001, RateBurst: 1},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var codes []int
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && (resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "--rate-limit")) {
			t.Errorf("429 without Retry-After or a message naming --rate-limit: %v %s", resp.Header, body)
		}
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusTooManyRequests {
		t.Errorf("statuses %v, want [200 429]", codes)
	}
}

func TestConnectionCap(t *testing.T) {
	tests := []struct {
		want    int
		nofile  uint64
		known   bool
		cap     int
		lowered bool
	}{
		{2048, 1 << 20, true, 2048, false},
		{2048, 1024, true, 768, true}, // 256 kept for upstreams
		{2048, 20000, true, 2048, false},
		{20000, 20000, true, 15000, true}, // a quarter kept
		{2048, 200, true, 100, true},      // tiny limit: half
		{2048, 0, false, 2048, false},     // unknown limit: as set
	}
	for _, tt := range tests {
		got, lowered := connectionCap(tt.want, tt.nofile, tt.known)
		if got != tt.cap || lowered != tt.lowered {
			t.Errorf("connectionCap(%d, %d, %v) = %d, %v; want %d, %v", tt.want, tt.nofile, tt.known, got, lowered, tt.cap, tt.lowered)
		}
	}
}
