package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/faultproxy"
)

// TestCPRotateCertificateAndTokens rotates, on running processes, the
// control plane's server certificate (to one from a new CA) and the bearer
// token of the control plane and of the agent, while calls flow through
// the agent: no call fails, no process restarts, new connections get the
// new certificate (its serial), the agent reconnects with the new token,
// and the old token is refused.
func TestCPRotateCertificateAndTokens(t *testing.T) {
	skipShort(t)
	oldCA, newCA := newPKI(t, "old"), newPKI(t, "new")
	live := t.TempDir() // the files the processes are started with
	srvCert, srvKey := filepath.Join(live, "server.pem"), filepath.Join(live, "server-key.pem")
	caFile, cpToken, agentToken := filepath.Join(live, "ca.pem"), filepath.Join(live, "cp-token"), filepath.Join(live, "agent-token")
	oldTok, newTok := "token-before-rotation-0001", "token-after-rotation-00002"
	c1, k1 := oldCA.issue("replica-1", true)
	install(t, srvCert, readFile(t, c1))
	install(t, srvKey, readFile(t, k1))
	install(t, caFile, readFile(t, oldCA.caFile()))
	install(t, cpToken, oldTok+"\n")
	install(t, agentToken, oldTok+"\n")
	oldTokFile := filepath.Join(t.TempDir(), "old-token")
	install(t, oldTokFile, oldTok+"\n")

	m1, m2 := startMath(t, primary, ""), startMath(t, backup, "")
	fleet := writeConfig(t, cpRecipe04(t, m1.URL(), m2.URL()))
	etcd := cpStartEtcd(t)
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet,
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--auth-token-file", cpToken)
	eventually(t, 10*time.Second, "the replica to lead", r.IsLeader)
	if got, want := servedSerial(t, r.GRPC, oldCA.caFile()), certSerial(t, c1); got.Cmp(want) != 0 {
		t.Fatalf("served serial %x at start, want %x", got, want)
	}
	// The agent reaches the replica through a proxy the test can cut, to
	// make it open a new connection.
	px, err := faultproxy.Start(r.GRPC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	a := cpStartAgent(t, "edge-1", []string{px.Addr()}, filepath.Join(t.TempDir(), "state"),
		"--cp-ca-file", caFile, "--cp-token-file", agentToken)
	a.WaitLog(`msg=control_plane_connected`, 10*time.Second)
	agentPID, cpPID := a.proc.PID(), r.proc.PID()

	calls, failed, stop := flowCalls(t, a)
	eventually(t, 10*time.Second, "calls through the agent", func() bool { return calls.Load() > 20 })

	// 1. The agent trusts the old and the new CA; the replica serves a
	// certificate of the new CA; the token changes on both sides.
	install(t, caFile, readFile(t, oldCA.caFile())+readFile(t, newCA.caFile()))
	c2, k2 := newCA.issue("replica-2", true)
	install(t, srvKey, readFile(t, k2))
	install(t, srvCert, readFile(t, c2))
	install(t, cpToken, newTok+"\n")
	install(t, agentToken, newTok+"\n")
	if got, want := servedSerial(t, r.GRPC, newCA.caFile()), certSerial(t, c2); got.Cmp(want) != 0 {
		t.Fatalf("a new connection after rotation got serial %x, want the new certificate's %x", got, want)
	}
	r.WaitLog(fmt.Sprintf(`msg=tls_reloaded cert=\S+ ca="" serial=%x`, certSerial(t, c2)), 10*time.Second)

	// 2. The agent's connection is cut: it reconnects, verifying the new
	// certificate with its CA file and sending the new token.
	connected := strings.Count(a.Logs(), "msg=control_plane_connected")
	px.Cut()
	px.Restore()
	eventually(t, 20*time.Second, "the agent to reconnect", func() bool {
		return strings.Count(a.Logs(), "msg=control_plane_connected") > connected
	})
	if strings.Contains(a.Logs(), "Unauthenticated") || strings.Contains(a.Logs(), "certificate signed by unknown authority") {
		t.Errorf("the agent's reconnection was refused on the way:\n%s", a.Logs())
	}
	before := calls.Load()
	eventually(t, 10*time.Second, "calls after the reconnection", func() bool { return calls.Load() > before+20 })

	// 3. The old token is refused, the new one accepted.
	res := runCtl(t, r.GRPC, "--ca-file", newCA.caFile(), "--token-file", oldTokFile, "group", "list")
	if res.code == 0 || !strings.Contains(res.stderr, "bearer token is not valid") {
		t.Errorf("hangarctl with the old token after rotation: want refused\n%s", res)
	}
	if res := runCtl(t, r.GRPC, "--ca-file", newCA.caFile(), "--token-file", cpToken, "group", "list"); res.code != 0 {
		t.Errorf("hangarctl with the new token:\n%s", res)
	}

	stop()
	if failed.Load() != 0 || calls.Load() == 0 {
		t.Errorf("%d of %d calls failed during the rotation", failed.Load(), calls.Load())
	}
	if a.proc.PID() != agentPID || r.proc.PID() != cpPID || a.proc.Exited() || r.proc.Exited() {
		t.Error("a process restarted")
	}
	t.Logf("%d calls through the agent, 0 failed; certificate %x → %x", calls.Load(), certSerial(t, c1), certSerial(t, c2))
}

// flowCalls sends calls through the agent until stop; it counts them and
// the failures (logged).
func flowCalls(t *testing.T, a *Agent) (calls, failed *atomic.Int64, stop func()) {
	calls, failed = new(atomic.Int64), new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cs := a.Connect() // before the Cleanup below, so that stop runs before the session closes
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			r, err := callOne(ctx, cs, "my-mcp-group", "add", map[string]any{"a": 1, "b": 2})
			if ctx.Err() != nil {
				return
			}
			calls.Add(1)
			if err != nil || !r.Success {
				failed.Add(1)
				t.Logf("call failed: %v %+v", err, r)
			}
		}
	}()
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return calls, failed, stop
}

// install replaces path with data by rename, as a rotation does.
func install(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// certSerial is the serial of the certificate in a PEM file.
func certSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// servedSerial opens a new TLS connection to addr, verified with caFile,
// and returns the serial of the certificate the server presents.
func servedSerial(t *testing.T, addr, caFile string) *big.Int {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(readFile(t, caFile))) {
		t.Fatalf("%s holds no CA", caFile)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to %s with the CA of %s: %v", addr, caFile, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}
