package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"github.com/hangarmesh/hangar/dataplane/gateway"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// allocReport is the heap allocations one tools/call costs a proxy in
// this process: a front door (router and gateway, as hangar-agent builds
// them) and an httputil.ReverseProxy, both in front of the primary
// mcp-math process, called by a bare HTTP client. The client's own
// allocations, measured calling the upstream directly, are subtracted.
type allocReport struct {
	Calls        int        `json:"calls"`
	Direct       allocRate  `json:"client_only"`
	ReverseProxy *allocRate `json:"reverse_proxy_added,omitempty"`
	FrontDoor    allocRate  `json:"front_door_added"`
	// ReverseProxyError says why the reverse proxy has no numbers: the
	// in-process httputil.ReverseProxy sometimes loses its upstream
	// connection in the middle of an answer under this client.
	ReverseProxyError string `json:"reverse_proxy_error,omitempty"`
}

// allocRate is allocations per call.
type allocRate struct {
	Allocs float64 `json:"allocs_per_call"`
	Bytes  float64 `json:"bytes_per_call"`
}

// measureAllocs runs n calls on each of the three paths in this process.
func measureAllocs(ctx context.Context, f *fleet, n int) (*allocReport, error) {
	upstream := f.directURL()
	fd, stop, err := startInProcessFrontDoor(ctx, f)
	if err != nil {
		return nil, err
	}
	defer stop()
	target := &url.URL{Scheme: "http", Host: f.primary.Ready()}
	rp := httptest.NewServer(newReverseProxy(target, 8, log.New(io.Discard, "", 0)))
	defer rp.Close()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	measure := func(u string) (allocRate, error) {
		rs, err := rawConnect(ctx, hc, u)
		if err != nil {
			return allocRate{}, err
		}
		return rs.allocsPerCall(ctx, n)
	}
	direct, err := measure(upstream)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathDirect, err)
	}
	front, err := measure(fd + "/mcp")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathFrontDoor, err)
	}
	sub := func(a, b allocRate) allocRate {
		return allocRate{Allocs: round1(a.Allocs - b.Allocs), Bytes: round1(a.Bytes - b.Bytes)}
	}
	rep := &allocReport{Calls: n, Direct: direct, FrontDoor: sub(front, direct)}
	if proxy, err := measure(rp.URL + "/mcp"); err != nil {
		rep.ReverseProxyError = err.Error()
	} else {
		added := sub(proxy, direct)
		rep.ReverseProxy = &added
	}
	return rep, nil
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// startInProcessFrontDoor builds the agent's router and front door on the
// bench's fleet file and serves the front door on a loopback port.
func startInProcessFrontDoor(ctx context.Context, f *fleet) (string, func(), error) {
	fl, err := fleetfile.Parse("hangar-bench", []byte(fleetYAML(f.primary.Ready(), f.backup.Ready())), nil)
	if err != nil {
		return "", nil, fmt.Errorf("in-process front door: %w", err)
	}
	r, err := router.New(fl, router.Options{})
	if err != nil {
		return "", nil, fmt.Errorf("in-process front door: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = r.Run(rctx); close(done) }()
	gw := gateway.New(r, gateway.Options{})
	srv := httptest.NewServer(gw.HTTPHandler())
	stop := func() {
		srv.Close()
		gw.CloseSessions()
		cancel()
		<-done
	}
	for deadline := time.Now().Add(frontDoorWait); !gw.Ready(); {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, errors.New("in-process front door: not ready in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv.URL, stop, nil
}

// rawSession is a stateful Streamable HTTP session spoken with bare HTTP
// requests, so that a call allocates as little as a client can.
type rawSession struct {
	hc   *http.Client
	url  string
	sid  string
	id   int
	body bytes.Buffer
	resp bytes.Buffer
}

func rawConnect(ctx context.Context, hc *http.Client, u string) (*rawSession, error) {
	s := &rawSession{hc: hc, url: u}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hangar-bench-raw","version":"1"}}}`
	if err := s.post(ctx, []byte(init)); err != nil {
		return nil, fmt.Errorf("initialize on %s: %w", u, err)
	}
	if err := s.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
		return nil, fmt.Errorf("initialized on %s: %w", u, err)
	}
	return s, nil
}

// call makes one tools/call of add and checks its answer.
func (s *rawSession) call(ctx context.Context) error {
	s.id++
	s.body.Reset()
	s.body.WriteString(`{"jsonrpc":"2.0","id":`)
	s.body.WriteString(strconv.Itoa(s.id))
	s.body.WriteString(`,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}`)
	if err := s.post(ctx, s.body.Bytes()); err != nil {
		return err
	}
	if !bytes.Contains(s.resp.Bytes(), []byte(`"result"`)) || bytes.Contains(s.resp.Bytes(), []byte(`"isError":true`)) {
		return fmt.Errorf("add failed: %.200s", s.resp.Bytes())
	}
	return nil
}

func (s *rawSession) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json, text/event-stream"}
	if s.sid != "" {
		req.Header["Mcp-Session-Id"] = []string{s.sid}
		req.Header["Mcp-Protocol-Version"] = []string{"2025-06-18"}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	s.resp.Reset()
	if _, err := s.resp.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, s.resp.Bytes())
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		s.sid = sid
	}
	return nil
}

// allocsPerCall makes n calls after a warm-up and returns the process'
// heap allocations per call.
func (s *rawSession) allocsPerCall(ctx context.Context, n int) (allocRate, error) {
	for range 50 {
		if err := s.call(ctx); err != nil {
			return allocRate{}, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if err := s.call(ctx); err != nil {
			return allocRate{}, err
		}
	}
	runtime.ReadMemStats(&after)
	return allocRate{
		Allocs: round1(float64(after.Mallocs-before.Mallocs) / float64(n)),
		Bytes:  round1(float64(after.TotalAlloc-before.TotalAlloc) / float64(n)),
	}, nil
}

func (a *allocReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nallocations per forwarded tools/call (in this process, bare HTTP client, %d calls; the client's own %.0f allocs, %.0f B subtracted):\n",
		a.Calls, a.Direct.Allocs, a.Direct.Bytes)
	fmt.Fprintf(w, "  front door %.1f allocs, %.0f B", a.FrontDoor.Allocs, a.FrontDoor.Bytes)
	if rp := a.ReverseProxy; rp != nil {
		fmt.Fprintf(w, "; reverse proxy %.1f allocs, %.0f B\n", rp.Allocs, rp.Bytes)
	} else {
		fmt.Fprintf(w, "; reverse proxy not measured: %s\n", a.ReverseProxyError)
	}
}
