package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// hardToken is the bearer token of the hardening tests' agents.
const hardToken = "hardening-token-0123456789"

func hardTokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(hardToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lowerBearer sends the token as "bearer <token>".
type lowerBearer struct{ base http.RoundTripper }

func (b lowerBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "bearer "+hardToken)
	return b.base.RoundTrip(r)
}

// openFDs counts the process's open file descriptors.
func openFDs(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// slowBody opens a connection, sends a POST that declares a 100 kB body
// with no (or a wrong) token, never sends the body, and holds the
// connection until the agent closes it. It returns how long the agent took.
func slowBody(ctx context.Context, addr, auth string) (time.Duration, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := "POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" +
		auth + "Content-Length: 100000\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, conn) // until the agent closes
	return time.Since(start), err
}

// slowHeaders opens a connection and sends half a request line, then
// nothing: it holds a slot of the connection cap until the header timeout.
func slowHeaders(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, "POST /mcp HTT"); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, conn)
	return err
}

// TestSlowBodyAttack: unauthenticated clients that declare a body and never
// send it, far more of them than the agent's connection cap, plus clients
// that never finish their headers, while a valid client keeps calling. The
// valid client keeps ≥ 99 % success, the agent's descriptors stay bounded
// and its health checks of the upstream keep passing.
func TestSlowBodyAttack(t *testing.T) {
	skipShort(t)
	const (
		maxConns  = 64
		attackers = 400 // slow-body connections at any time: 6× the cap
		loris     = 100 // slow-header connections
		calls     = 300
	)
	m := startMath(t, "my-mcp", "")
	cfg := writeConfig(t, fmt.Sprintf(`mcp_servers:
  my-mcp: {mode: remote, endpoint: %s, health_check_interval_s: 1}
`, m.URL()))
	a := startAgent(t, cfg, "--auth-token-file", hardTokenFile(t), "--max-connections", fmt.Sprint(maxConns),
		"--read-header-timeout", "2s", "--metrics-listen", "127.0.0.1:0")
	metricsAddr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(a.WaitLog(`metrics_server_started`, 10*time.Second))[1]
	unhealthy := func() float64 {
		v, err := cpScrape("http://"+metricsAddr+"/metrics", `mcp_hangar_health_checks_total{mcp_server="my-mcp",result="unhealthy"}`)
		if err != nil {
			return 0 // no unhealthy check yet: no sample
		}
		return v
	}

	// The valid client connects before the attack, as a running client
	// would; it writes the scheme in lower case (RFC 7235: any case).
	hc := &http.Client{Transport: lowerBearer{base: http.DefaultTransport}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(fdCtx(t, 10*time.Second),
		&mcp.StreamableClientTransport{Endpoint: a.URL(), HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect with the token: %v", err)
	}
	defer cs.Close()
	if r, err := callOne(fdCtx(t, 10*time.Second), cs, "my-mcp", "add", map[string]any{"a": 1, "b": 2}); err != nil || !r.Success {
		t.Fatalf("call before the attack: %+v, %v", r, err)
	}
	fdBefore, unhealthyBefore := openFDs(a.proc.PID()), unhealthy()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var rejected, slowest atomic.Int64
	for i := range attackers {
		auth := ""
		if i%2 == 1 {
			auth = "Authorization: Bearer wrong-token-0123456789\r\n"
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				d, err := slowBody(ctx, a.Addr, auth)
				if err == nil && ctx.Err() == nil {
					rejected.Add(1)
					for old := slowest.Load(); int64(d) > old && !slowest.CompareAndSwap(old, int64(d)); old = slowest.Load() {
					}
				}
			}
		})
	}
	for range loris {
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = slowHeaders(ctx, a.Addr)
			}
		})
	}
	var fdMax atomic.Int64
	wg.Go(func() {
		for ctx.Err() == nil {
			if n := int64(openFDs(a.proc.PID())); n > fdMax.Load() {
				fdMax.Store(n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	// Let the attack reach the cap before measuring.
	eventually(t, 20*time.Second, "the attack to reach the connection cap", func() bool { return rejected.Load() >= attackers })

	ok := 0
	var failures []string
	start := time.Now()
	for i := range calls {
		r, err := callOne(fdCtx(t, 10*time.Second), cs, "my-mcp", "add", map[string]any{"a": i, "b": 1})
		if err == nil && r.Success {
			ok++
		} else if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf("call %d: %+v %v", i, r, err))
		}
	}
	elapsed := time.Since(start)
	stop()
	wg.Wait()

	rate := float64(ok) / calls
	t.Logf("valid client: %d/%d calls succeeded (%.1f %%) in %v during the attack; %d slow-body requests refused, slowest refusal %v; "+
		"agent fds: %d before, at most %d during (cap %d)", ok, calls, 100*rate, elapsed.Round(time.Millisecond),
		rejected.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), fdBefore, fdMax.Load(), maxConns)
	if rate < 0.99 {
		t.Errorf("valid client success %.1f %% under attack, want ≥ 99 %%; first failures:\n%s", 100*rate, strings.Join(failures, "\n"))
	}
	// Refusals come from the headers alone: never after the body timeout.
	if d := time.Duration(slowest.Load()); d >= 30*time.Second {
		t.Errorf("a slow-body request was held %v before its 401", d)
	}
	if n := fdMax.Load(); n > int64(fdBefore+maxConns+16) {
		t.Errorf("agent held %d descriptors under attack: more than the %d before plus the cap of %d", n, fdBefore, maxConns)
	}
	if u := unhealthy(); u != unhealthyBefore {
		t.Errorf("the agent's health checks of my-mcp failed %v times during the attack", u-unhealthyBefore)
	}
	if logs := a.Logs(); strings.Contains(logs, "too many open files") {
		t.Errorf("the agent ran out of file descriptors:\n%s", logs)
	}
	if !strings.Contains(a.Logs(), "connection_limit_reached") {
		t.Errorf("the agent did not log that the connection cap was reached")
	}
}

// TestStateFileDamagedWithoutControlPlane: an agent that takes its fleet
// from the control plane is restarted with no replica up, first with its
// last snapshot truncated (it boots from the one before, with a warning),
// then with both snapshots damaged (it still answers its health endpoints,
// not ready, and every call gets a clear error), and recovers when the
// replica returns.
func TestStateFileDamagedWithoutControlPlane(t *testing.T) {
	skipShort(t)
	p, b := startMath(t, primary, ""), startMath(t, backup, "")
	etcd := cpStartEtcd(t)
	fleet := writeConfig(t, cpRecipe04(t, p.URL(), b.URL()))
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet, "--election-ttl", cpTTL.String())
	dir := filepath.Join(t.TempDir(), "state")
	a := cpStartAgent(t, "agent-s", []string{r.GRPC}, dir)
	last, prev := filepath.Join(dir, "snapshot.state"), filepath.Join(dir, "snapshot.state.prev")
	// Agents' reports bring new snapshots; wait until two are kept.
	eventually(t, 20*time.Second, "two snapshots in the state dir", func() bool {
		_, err := os.Stat(prev)
		return err == nil
	})
	cpStopAgent(a)
	r.Kill()
	good := map[string][]byte{}
	for _, f := range []string{last, prev} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		good[f] = b
	}
	// damageState writes the good content of a state file through f.
	damageState := func(t *testing.T, path string, f func([]byte) []byte) {
		t.Helper()
		if err := os.WriteFile(path, f(bytes.Clone(good[path])), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("truncated last snapshot: boots from the previous one", func(t *testing.T) {
		damageState(t, last, func(b []byte) []byte { return b[:len(b)/2] })
		damageState(t, prev, func(b []byte) []byte { return b })
		start := time.Now()
		a := cpStartAgent(t, "agent-s", []string{r.GRPC}, dir)
		res, err := callOne(fdCtx(t, 10*time.Second), a.Connect(), group, "add", map[string]any{"a": 2, "b": 40})
		if err != nil || !res.Success {
			t.Fatalf("call after booting from the previous snapshot: %+v, %v", res, err)
		}
		t.Logf("truncated last snapshot: start → first successful call %v", time.Since(start).Round(time.Millisecond))
		a.WaitLog(`msg=state_file_unusable path=\S+snapshot.state error=".*truncated`, 5*time.Second)
		a.WaitLog(`msg=state_fallback`, 5*time.Second)
		cpStopAgent(a)
	})

	t.Run("corrupt and truncated: health answers, calls get a clear error", func(t *testing.T) {
		damageState(t, last, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })
		damageState(t, prev, func(b []byte) []byte { return b[:len(b)-7] })
		a := cpStartAgentUnready(t, "agent-s", []string{r.GRPC}, dir)
		a.WaitLog(`msg=state_unusable .*snapshot.state: .*checksum mismatch.*snapshot.state.prev: .*truncated`, 5*time.Second)
		if code, _ := fdGet(t, "http://"+a.Addr+"/health/live"); code != http.StatusOK {
			t.Errorf("/health/live: %d, want 200", code)
		}
		if code, body := fdGet(t, "http://"+a.Addr+"/health/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no fleet configuration") {
			t.Errorf("/health/ready: %d %s, want 503 saying why", code, body)
		}
		code, body, _ := (&fdRawMCP{url: a.URL()}).post(t, fdInitialize, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) || !strings.Contains(body, "no fleet configuration") {
			t.Errorf("initialize: %d %s, want 503 with a JSON-RPC error saying why", code, body)
		}

		// The replica comes back (on its address): the agent recovers.
		back := time.Now()
		cpStartReplica(t, "r1", etcd.Endpoint, "--listen", r.GRPC, "--election-ttl", cpTTL.String())
		eventually(t, 20*time.Second, "the agent ready after the replica returned", func() bool { return cpAgentReady(a) == http.StatusOK })
		res, err := callOne(fdCtx(t, 10*time.Second), a.Connect(), group, "add", map[string]any{"a": 2, "b": 40})
		if err != nil || !res.Success {
			t.Fatalf("call after the replica returned: %+v, %v", res, err)
		}
		t.Logf("both snapshots damaged: replica restarted → agent ready and first call served in %v", time.Since(back).Round(time.Millisecond))
		if _, err := os.Stat(last); err != nil {
			t.Errorf("no new state file after recovery: %v", err)
		}
	})
}
