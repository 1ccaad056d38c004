package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/proc"
)

// cpEtcdMember is one member of a `hangar-controlplane etcd` cluster; it
// can be killed and started again on the same data dir and ports.
type cpEtcdMember struct {
	t      *testing.T
	name   string
	args   []string
	client string // client URL
	proc   *proc.Process
}

// cpStartEtcdCluster starts n members forming one cluster on loopback and
// returns them once each serves (which needs a quorum).
func cpStartEtcdCluster(t *testing.T, n int) []*cpEtcdMember {
	t.Helper()
	ms := make([]*cpEtcdMember, n)
	var peers []string
	for i := range ms {
		name := fmt.Sprintf("e%d", i+1)
		ms[i] = &cpEtcdMember{t: t, name: name, client: "http://" + freeAddr(t)}
		peers = append(peers, name+"=http://"+freeAddr(t))
	}
	dir := t.TempDir()
	for i, m := range ms {
		peer := strings.SplitN(peers[i], "=", 2)[1]
		m.args = []string{"etcd", "--name", m.name, "--data-dir", filepath.Join(dir, m.name), "--listen-client", m.client,
			"--listen-peer", peer, "--initial-cluster", strings.Join(peers, ","), "--initial-cluster-token", "e2e"}
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(m.start)
	}
	wg.Wait()
	for _, m := range ms {
		if m.proc == nil {
			t.FailNow()
		}
		t.Cleanup(func() { _ = m.proc.Stop(5 * time.Second) })
	}
	return ms
}

// start starts the member and waits until it serves (it reports a
// failure on m.t; m.proc stays nil then).
func (m *cpEtcdMember) start() {
	p, err := proc.Start(proc.Spec{Name: "etcd " + m.name, Path: cpBin, Args: m.args, Ready: cpEtcdReady}, 30*time.Second)
	if err != nil {
		m.t.Errorf("etcd %s: %v", m.name, err)
		return
	}
	m.proc = p
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// readyz returns the replica's /readyz status code, 0 if it does not answer.
func (r *cpReplica) readyz() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + r.HTTP + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCPEtcdQuorumLost: two of three etcd members are killed for 10 s
// while an agent carries calls. The replicas do not exit: they step down,
// report not ready, keep their agents (and the agent's calls) going, and
// hangarctl fails fast saying etcd is unavailable. When the members come
// back the replicas rejoin without a restart: ready again, one leads, and
// hangarctl works.
func TestCPEtcdQuorumLost(t *testing.T) {
	skipShort(t)
	m1, m2 := startMath(t, primary, ""), startMath(t, backup, "")
	fleet := writeConfig(t, cpRecipe04(t, m1.URL(), m2.URL()))
	etcd := cpStartEtcdCluster(t, 3)
	var endpoints []string
	for _, m := range etcd {
		endpoints = append(endpoints, m.client)
	}
	eps := strings.Join(endpoints, ",")
	rs := []*cpReplica{
		cpStartReplica(t, "r1", eps, "--fleet-config", fleet, "--election-ttl", "2s"),
		cpStartReplica(t, "r2", eps, "--election-ttl", "2s"),
	}
	eventually(t, 15*time.Second, "a replica to lead", func() bool { return rs[0].IsLeader() || rs[1].IsLeader() })
	a := cpStartAgent(t, "edge-1", []string{rs[0].GRPC, rs[1].GRPC}, filepath.Join(t.TempDir(), "state"))
	a.WaitLog(`msg=snapshot_applied version=\d+`, 15*time.Second)
	tr := startTraffic(t, a.Connect(), "my-mcp-group", 1, 20*time.Millisecond)
	tr.waitCalls(t, primary, time.Now(), 20, 20*time.Second)

	lost := time.Now()
	etcd[1].proc.Kill()
	etcd[2].proc.Kill()
	eventually(t, 20*time.Second, "both replicas not ready (/readyz 503)", func() bool {
		return rs[0].readyz() == http.StatusServiceUnavailable && rs[1].readyz() == http.StatusServiceUnavailable
	})
	t.Logf("replicas not ready %.1f s after quorum was lost", time.Since(lost).Seconds())

	start := time.Now()
	res := runCtl(t, rs[0].GRPC+","+rs[1].GRPC, "group", "list")
	took := time.Since(start)
	t.Logf("hangarctl group list without etcd quorum: exit %d in %.2f s", res.code, took.Seconds())
	if res.code != 2 || !strings.Contains(res.stderr, "cannot reach etcd") || strings.Contains(res.stderr, "cannot reach the control plane at") {
		t.Errorf("hangarctl without etcd quorum: want exit 2 saying the control plane cannot reach etcd\n%s", res)
	}
	// Quorum stays lost 10 s in all; the agent keeps calling meanwhile.
	tr.waitCalls(t, primary, lost.Add(9*time.Second), 10, 30*time.Second)
	for _, r := range rs {
		if r.proc.Exited() {
			t.Fatalf("replica %s exited without etcd quorum:\n%s", r.Name, r.Logs())
		}
	}

	back := time.Now()
	var wg sync.WaitGroup
	for _, m := range etcd[1:] {
		wg.Go(m.start)
	}
	wg.Wait()
	for _, m := range etcd[1:] {
		if m.proc == nil {
			t.FailNow()
		}
		t.Cleanup(func() { _ = m.proc.Stop(5 * time.Second) })
	}
	etcdBack := time.Since(back)
	eventually(t, 30*time.Second, "both replicas ready again", func() bool {
		return rs[0].readyz() == http.StatusOK && rs[1].readyz() == http.StatusOK
	})
	ready := time.Since(back)
	eventually(t, 30*time.Second, "a replica to lead again", func() bool { return rs[0].IsLeader() || rs[1].IsLeader() })
	led := time.Since(back)
	t.Logf("etcd members restarted (quorum back) in %.2f s; replicas ready %.2f s and a leader %.2f s after the restart began",
		etcdBack.Seconds(), ready.Seconds(), led.Seconds())
	if res := runCtl(t, rs[1].GRPC, "group", "list"); res.code != 0 {
		t.Errorf("hangarctl after quorum returned:\n%s", res)
	}
	for _, r := range rs {
		r.WaitLog(`msg=etcd_session_restored`, 10*time.Second)
	}
	tr.Stop()
	if f := failures(tr.records()); f != "" {
		t.Errorf("calls through the agent failed while etcd had no quorum: %s", f)
	}
	t.Logf("%d calls through the agent, none failed", len(tr.records()))
}
