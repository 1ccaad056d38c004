package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/e2e/faultproxy"
	"github.com/hangarmesh/hangar/e2e/mathserver"
	"github.com/hangarmesh/hangar/e2e/proc"
)

// The control-plane scenarios of docs/design.md §3.5 and §4 with real processes:
// one etcd node, three hangar-controlplane replicas sharing it, agents A, B
// and C that take recipe 04 from the replicas' snapshots, and mcp-math
// members. Processes are killed with SIGKILL by PID.

// cpOutOfRotation matches the leader's event taking the primary out of global
// rotation; its submatch is the snapshot version that carries the decision.
const cpOutOfRotation = `msg=member_out_of_rotation group=my-mcp-group member=my-mcp message=".*\(snapshot (\d+)\)"`

// waitGlobalEjection waits for the leader to take the primary out of global
// rotation and for agents B and C to apply a snapshot carrying that
// decision and show the primary out of rotation. It returns the snapshot
// version and when B applied it.
func (c *cpCluster) waitGlobalEjection() (version uint64, appliedByB time.Time) {
	c.t.Helper()
	eventually(c.t, 10*time.Second, "the leader's member_out_of_rotation event", func() bool {
		for _, r := range c.replicas {
			if m := cpMatches(r.Logs(), cpOutOfRotation); len(m) > 0 {
				version, _ = strconv.ParseUint(m[0], 10, 64)
				return true
			}
		}
		return false
	})
	for i := 1; i < len(c.agents); i++ {
		line := c.waitApplied(i, version)
		if i == 1 {
			appliedByB = cpLineTime(c.t, line)
		}
		if g := groupDetails(c.t, c.sessions[i]); g.member(primary).InRotation || g.Active != backup {
			c.t.Fatalf("%s applied snapshot %d but shows primary in_rotation %v, active member %q; want false, %s",
				cpAgentIDs[i], version, g.member(primary).InRotation, g.Active, backup)
		}
	}
	return version, appliedByB
}

// waitApplied waits until agent i applied a snapshot of version v or newer
// and returns that log line.
func (c *cpCluster) waitApplied(i int, v uint64) string {
	c.t.Helper()
	var line string
	eventually(c.t, 10*time.Second, fmt.Sprintf("%s applying snapshot %d", cpAgentIDs[i], v), func() bool {
		for _, l := range cpLines(c.agents[i].Logs(), `msg=snapshot_applied version=(\d+)`) {
			if got, _ := strconv.ParseUint(l.sub, 10, 64); got >= v {
				line = l.line
				return true
			}
		}
		return false
	})
	return line
}

// callsOnBackup sends n add calls through agent i and checks that each
// succeeded on the backup at the first attempt: the agent never tried the
// primary.
func (c *cpCluster) callsOnBackup(i, n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k := range n {
		res, err := callOne(ctx, c.sessions[i], group, "add", map[string]any{"a": k, "b": 1})
		if err != nil || !res.Success || res.Member != backup || res.Attempts != 1 {
			c.t.Errorf("%s call %d: %+v, %v; want success on %s at the first attempt", cpAgentIDs[i], k, res, err, backup)
			return
		}
	}
}

// TestCPKilledPrimaryMovesEveryAgent: traffic through agent A only; the
// primary is killed with SIGKILL. A loses no call, and agents B and C,
// which sent nothing, run the backup from the snapshot that A's report
// caused before they send their first call: each of their calls is served
// by the backup at the first attempt.
func TestCPKilledPrimaryMovesEveryAgent(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	begin := time.Now()
	tr := startTraffic(t, c.sessions[0], group, 2, 10*time.Millisecond)
	tr.waitCalls(t, primary, begin, 30, 20*time.Second)

	killed := time.Now()
	c.primary.Kill()
	removed := cpLineTime(t, c.agents[0].WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second))
	version, applied := c.waitGlobalEjection()
	tr.waitCalls(t, backup, killed, 30, 10*time.Second)
	c.callsOnBackup(1, 10)
	c.callsOnBackup(2, 10)
	tr.Stop()

	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls through agent A failed across the kill: %s", f)
	}
	t.Logf("A: %d calls, %d failed over inside the call; A's ejection → B's snapshot_applied version=%d: %s",
		len(recs), failedOver(recs), version, applied.Sub(removed).Round(time.Microsecond))
}

// TestCPFailingPrimaryLeavesRotationEverywhere is the counted proof: the
// primary stays up but fails every call, so a call any agent sent it would
// show in its served-call count. A ejects it by traffic (the only caller,
// so more than the quorum); B and C then send calls that all land on the
// backup while the primary's count does not move.
func TestCPFailingPrimaryLeavesRotationEverywhere(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	begin := time.Now()
	tr := startTraffic(t, c.sessions[0], group, 2, 10*time.Millisecond)
	tr.waitCalls(t, primary, begin, 30, 20*time.Second)

	c.primary.SetFaults(mathserver.Faults{FailTools: []string{mathserver.AllTools}, FailMode: mathserver.FailRPC})
	removed := cpLineTime(t, c.agents[0].WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second))
	version, applied := c.waitGlobalEjection()
	tr.waitCalls(t, backup, removed, 20, 10*time.Second)
	tr.Stop()
	lastA := time.Now()

	before := c.primary.Stats()
	c.callsOnBackup(1, 20)
	c.callsOnBackup(2, 20)
	after := c.primary.Stats()
	if d := time.Since(lastA); d > 8*time.Second {
		t.Fatalf("B's and C's calls took %s after A's last call: A no longer counts as a caller (10 s window), the check does not hold", d)
	}
	if after.TotalCalls != before.TotalCalls {
		t.Errorf("the failing primary received %d calls from B and C, want 0", after.TotalCalls-before.TotalCalls)
	}
	if before.FailedCalls == 0 {
		t.Error("the primary failed no call: the fault did not apply")
	}
	recs := tr.records()
	if f := failures(recs); f != "" {
		t.Errorf("calls through agent A failed although the backup was healthy: %s", f)
	}
	t.Logf("A: %d calls, %d failed over inside the call; primary failed %d; A's ejection → B's snapshot_applied version=%d: %s",
		len(recs), failedOver(recs), before.FailedCalls, version, applied.Sub(removed).Round(time.Microsecond))
}

// startTrafficAll starts one caller on each agent.
func (c *cpCluster) startTrafficAll() []*traffic {
	var trs []*traffic
	for _, cs := range c.sessions {
		trs = append(trs, startTraffic(c.t, cs, group, 1, 20*time.Millisecond))
	}
	return trs
}

// cpWaitAllCalls waits until every traffic had n calls served by member
// that started after since.
func cpWaitAllCalls(t *testing.T, trs []*traffic, member string, since time.Time, n int) {
	t.Helper()
	for _, tr := range trs {
		tr.waitCalls(t, member, since, n, 20*time.Second)
	}
}

// cpStopAll stops the traffics, reports failed calls and counts the calls.
func cpStopAll(t *testing.T, trs []*traffic, when string) (calls, failed int) {
	t.Helper()
	for i, tr := range trs {
		tr.Stop()
		recs := tr.records()
		calls += len(recs)
		if f := failures(recs); f != "" {
			t.Errorf("calls through %s failed %s: %s", cpAgentIDs[i], when, f)
		}
		for _, r := range recs {
			if !r.ok() {
				failed++
			}
		}
	}
	return calls, failed
}

// cpConnectedTo returns the endpoints of every control_plane_connected line
// of agent a, in order.
func cpConnectedTo(a *Agent) []string {
	return cpMatches(a.Logs(), `msg=control_plane_connected endpoint=(\S+)`)
}

// TestCPLeaderKilled: the leader replica is killed with SIGKILL while every
// agent sends calls. Another replica leads within 2 × the election TTL, the
// agent that was connected to the dead replica reconnects to another one,
// every agent converges on the new leader's snapshot, and no call fails.
func TestCPLeaderKilled(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	begin := time.Now()
	trs := c.startTrafficAll()
	cpWaitAllCalls(t, trs, primary, begin, 10)

	old := c.leader()
	var onOld []int
	before := map[int]int{}
	for i, a := range c.agents {
		eps := cpConnectedTo(a)
		before[i] = len(eps)
		if eps[len(eps)-1] == old.GRPC {
			onOld = append(onOld, i)
		}
	}
	if len(onOld) == 0 {
		t.Fatalf("no agent is connected to the leader %s (agents spread over the replicas in turn)", old.Name)
	}

	killed := time.Now()
	old.Kill()
	var next *cpReplica
	eventually(t, 4*cpTTL, "a new leader", func() bool { next = c.leader(); return next != nil })
	elected := time.Since(killed)
	if elected > 2*cpTTL {
		t.Errorf("a new leader took %s after the leader died, want at most 2 × TTL (%s)", elected, 2*cpTTL)
	}
	var reconnected time.Duration
	for _, i := range onOld {
		eventually(t, 10*time.Second, cpAgentIDs[i]+" reconnected to another replica", func() bool {
			eps := cpConnectedTo(c.agents[i])
			return len(eps) > before[i] && eps[len(eps)-1] != old.GRPC
		})
		lines := cpLines(c.agents[i].Logs(), `msg=control_plane_connected endpoint=(\S+)`)
		reconnected = max(reconnected, cpLineTime(t, lines[len(lines)-1].line).Sub(killed))
	}
	c.waitConverged()
	converged := time.Since(killed)
	cpWaitAllCalls(t, trs, primary, time.Now(), 10)
	calls, failed := cpStopAll(t, trs, "while the leader was replaced")
	t.Logf("old leader %s, new leader %s after %s (TTL %s); %d agent(s) reconnected within %s; all converged after %s; %d calls, %d failed",
		old.Name, next.Name, elected.Round(time.Millisecond), cpTTL, len(onOld), reconnected.Round(time.Millisecond),
		converged.Round(time.Millisecond), calls, failed)
}

// killControlPlane kills every replica, then etcd, and waits until every
// agent says it is disconnected.
func (c *cpCluster) killControlPlane() {
	c.t.Helper()
	for _, r := range c.replicas {
		r.Kill()
	}
	c.etcd.Kill()
	for i, a := range c.agents {
		eventually(c.t, 10*time.Second, cpAgentIDs[i]+" disconnected", func() bool {
			return cpAgentMetric(a, "mcp_hangar_control_plane_connected") == 0
		})
	}
}

// TestCPEveryReplicaDown: every replica and etcd are killed while the
// agents send calls. No call fails; the agents keep their last snapshot and
// decide locally, so killing the primary during the outage still fails
// over: A's calls keep succeeding, on the backup.
func TestCPEveryReplicaDown(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	begin := time.Now()
	trs := c.startTrafficAll()
	cpWaitAllCalls(t, trs, primary, begin, 10)

	down := time.Now()
	c.killControlPlane()
	cpWaitAllCalls(t, trs, primary, time.Now(), 20)

	killed := time.Now()
	c.primary.Kill()
	removed := cpLineTime(t, c.agents[0].WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second))
	cpWaitAllCalls(t, trs, backup, removed, 30)
	calls, failed := cpStopAll(t, trs, "with the control plane down")
	for _, r := range trs[0].records() {
		if r.start.After(removed) && (r.res.Member != backup || r.res.Attempts != 1) {
			t.Errorf("A's call at %s after the primary left its rotation: served by %q in %d attempts, want %s in 1",
				r.start.Format("15:04:05.000"), r.res.Member, r.res.Attempts, backup)
			break
		}
	}
	t.Logf("%d calls, %d failed, over %s without a control plane; primary killed %s into the outage, %d of A's calls failed over inside the call",
		calls, failed, time.Since(down).Round(time.Millisecond), killed.Sub(down).Round(time.Millisecond), failedOver(trs[0].records()))
}

// TestCPAgentRestartsFromStateWithoutControlPlane: with every replica and
// etcd down, agent B (no --config) is restarted. It boots from the
// snapshot in its state dir and serves calls on that snapshot's routing.
// How long from process start to its first call is logged (a timing
// goal, not asserted: a loaded machine would fail it).
func TestCPAgentRestartsFromStateWithoutControlPlane(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	version := cpAgentMetric(c.agents[1], "mcp_hangar_snapshot_version")
	c.killControlPlane()
	cpStopAgent(c.agents[1])

	start := time.Now()
	b := cpStartAgent(t, cpAgentIDs[1], c.endpointsFor(1), c.stateDirs[1])
	cs := b.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callOne(ctx, cs, group, "add", map[string]any{"a": 2, "b": 40})
	took := time.Since(start)
	if err != nil || !res.Success || res.Member != primary {
		t.Fatalf("first call after the restart: %+v, %v; want success on %s", res, err, primary)
	}
	if err := checkSum(res.Result, 42); err != nil {
		t.Error(err)
	}
	b.WaitLog(fmt.Sprintf(`msg=state_loaded dir=\S+ version=%d\b`, int64(version)), 30*time.Second)
	if eps := cpConnectedTo(b); len(eps) > 0 {
		t.Errorf("the restarted agent connected to %v, but every replica is down", eps)
	}
	var g struct {
		Active  string `json:"active_member"`
		Version uint64 `json:"global_snapshot_version"`
	}
	details(t, cs, group, &g)
	if g.Active != primary || g.Version != uint64(version) {
		t.Errorf("restarted agent: active member %q, global snapshot %d; want %s, %d", g.Active, g.Version, primary, int64(version))
	}
	t.Logf("restarted from snapshot %d: process start → first successful call %s", int64(version), took.Round(time.Millisecond))
}

// TestCPOneAgentCutOffFromPrimary: only agent A's path to the primary
// breaks (A reaches it through a fault proxy, from a local --config; B and
// C take the fleet from the control plane and reach it directly). A fails
// over without a failed call; B and C keep the primary, which stays in
// global rotation: one agent of three ejecting it is not a quorum, and a
// failing prober is outvoted.
func TestCPOneAgentCutOffFromPrimary(t *testing.T) {
	// Every agent runs the control plane's fleet file; only A's environment
	// sends its path to the primary through the fault proxy, so A is one
	// agent of three with a bad path, not an agent with a fleet of its own
	// (whose reports would not count at all).
	c := startControlPlaneFleet(t, 0, func(addr string) string {
		return "http://${HANGAR_E2E_PRIMARY:-" + addr + "}/mcp"
	})
	px, err := faultproxy.Start(c.primary.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	c.startAgents(map[int][]string{0: {"HANGAR_E2E_PRIMARY=" + px.Addr()}})
	begin := time.Now()
	trs := c.startTrafficAll()
	// The leader counts an agent as a caller once a heartbeat (every 1 s)
	// carried its last call: let every agent call for two heartbeats, or
	// A alone would be all the callers the leader knows.
	eventually(t, 20*time.Second, "every agent calling for 2 s", func() bool {
		for _, tr := range trs {
			if len(served(tr.records(), primary, begin, time.Now().Add(-2*time.Second))) == 0 {
				return false
			}
		}
		return true
	})

	cut := time.Now()
	px.Cut()
	removed := cpLineTime(t, c.agents[0].WaitLog(`msg=member_removed_from_rotation group=my-mcp-group member=my-mcp`, 10*time.Second))
	trs[0].waitCalls(t, backup, removed, 20, 10*time.Second)
	// A probes the primary through the proxy if the leader assigned it: let
	// its probes fail until it calls the primary degraded, so that the
	// leader hears the worst A can say.
	probes := cpMatches(c.agents[0].Logs(), `msg=probes_assigned version=\d+ members="?\[([^\]]*)\]`)
	aProbes := len(probes) > 0 && slices.Contains(strings.Fields(probes[len(probes)-1]), primary)
	if aProbes {
		c.agents[0].WaitLog(`msg=mcp_server_degraded mcp_server=my-mcp\b`, 15*time.Second)
	}
	// B and C keep the primary for a second and more of traffic after that.
	heard := time.Now()
	for _, tr := range trs[1:] {
		tr.waitCalls(t, primary, heard, 50, 20*time.Second)
	}
	cpStopAll(t, trs, "while A was cut off from the primary")

	for i, tr := range trs[1:] {
		for _, r := range tr.records() {
			if r.start.After(cut) && (r.res.Member != primary || r.res.Attempts != 1) {
				t.Errorf("%s's call at %s after the cut: served by %q in %d attempts, want %s in 1",
					cpAgentIDs[i+1], r.start.Format("15:04:05.000"), r.res.Member, r.res.Attempts, primary)
				break
			}
		}
		if g := groupDetails(t, c.sessions[i+1]); !g.member(primary).InRotation || g.Active != primary {
			t.Errorf("%s: primary in_rotation %v, active member %q; want true, %s", cpAgentIDs[i+1], g.member(primary).InRotation, g.Active, primary)
		}
	}
	for _, r := range c.replicas {
		if m := cpMatches(r.Logs(), cpOutOfRotation); len(m) > 0 {
			t.Errorf("replica %s took the primary out of global rotation (snapshot %s) because one agent of three lost it", r.Name, m[0])
		}
	}
	if g := groupDetails(t, c.sessions[0]); g.member(primary).InRotation || g.Active != backup {
		t.Errorf("A: primary in_rotation %v, active member %q; want false, %s", g.member(primary).InRotation, g.Active, backup)
	}
	accepted, refused := px.Stats()
	t.Logf("A: cut → ejection %s, %d failed over inside the call; A probes the primary: %v; proxy refused %d of %d connections; B and C stayed on the primary",
		removed.Sub(cut).Round(time.Millisecond), failedOver(trs[0].records()), aProbes, refused, accepted)
}

// cpStoredConfig reads the fleet file the replicas stored in etcd and the
// revision that wrote it.
func cpStoredConfig(t *testing.T, endpoint string) ([]byte, int64) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/hangar/config")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read /hangar/config: %v (%d keys)", err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
}

// TestCPBrokenFleetConfigRefused: a replica started with a fleet file that
// has a misspelt key exits non-zero with the parser's file:line message;
// the stored configuration and the snapshots the agents run are unchanged.
func TestCPBrokenFleetConfigRefused(t *testing.T) {
	c := startControlPlane(t)
	c.startAgents(nil)
	data, rev := cpStoredConfig(t, c.etcd.Endpoint)
	var versions []float64
	for _, a := range c.agents {
		versions = append(versions, cpAgentMetric(a, "mcp_hangar_snapshot_version"))
	}

	good := cpRecipe04(t, c.primary.URL(), c.backup.URL())
	bad := strings.Replace(good, "strategy: priority", "stratgy: priority", 1)
	line := strings.Count(bad[:strings.Index(bad, "stratgy")], "\n") + 1
	path := writeConfig(t, bad)
	p, err := proc.Start(proc.Spec{Name: "replica r4", Path: cpBin, Args: []string{"serve", "--name", "r4",
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--etcd-endpoints", c.etcd.Endpoint,
		"--fleet-config", path, "--election-ttl", cpTTL.String()}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		p.Kill()
		t.Fatalf("the replica with a broken fleet file still runs after 20 s:\n%s", p.Output())
	}
	var ee *exec.ExitError
	if err := p.Stop(0); !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("replica with a broken fleet file exited with %v, want a non-zero exit code", err)
	}
	out := p.Output()
	if want := fmt.Sprintf("%s:%d", path, line); !strings.Contains(out, want) || !strings.Contains(out, "stratgy") {
		t.Errorf("the replica's error does not name %s and the key stratgy:\n%s", want, out)
	}
	if strings.Contains(out, "controlplane_started") {
		t.Errorf("the replica started serving with a broken fleet file:\n%s", out)
	}

	if got, gotRev := cpStoredConfig(t, c.etcd.Endpoint); string(got) != string(data) || gotRev != rev {
		t.Errorf("stored config changed: revision %d → %d", rev, gotRev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range c.agents {
		if v := cpAgentMetric(a, "mcp_hangar_snapshot_version"); v != versions[i] {
			t.Errorf("%s runs snapshot %v, want %v as before", cpAgentIDs[i], v, versions[i])
		}
		for _, ev := range []string{"snapshot_rejected", "config_reloaded"} {
			if strings.Contains(a.Logs(), "msg="+ev) {
				t.Errorf("%s logged %s", cpAgentIDs[i], ev)
			}
		}
		if res, err := callOne(ctx, c.sessions[i], group, "add", map[string]any{"a": 1, "b": 2}); err != nil || !res.Success || res.Member != primary {
			t.Errorf("%s call after the refused config: %+v, %v; want success on %s", cpAgentIDs[i], res, err, primary)
		}
	}
	t.Logf("refused with: %s", cpFirstLine(out, "stratgy"))
}

// cpFirstLine returns the first line of s containing sub.
func cpFirstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestCPStalledAgentIsDisconnected: agent C is frozen (SIGSTOP), so it
// stops reading its stream, while an operator drains and undrains the
// backup over and over; each change is a new snapshot, 256 KiB each (the
// fleet file carries a large comment), so C's stream fills up. The replica
// serving C disconnects it instead of stalling; A and B apply every
// snapshot meanwhile; thawed, C reconnects and runs the latest one.
func TestCPStalledAgentIsDisconnected(t *testing.T) {
	c := startControlPlanePadded(t, 256<<10)
	c.startAgents(nil)
	stalled := c.agents[2]
	eps := cpConnectedTo(stalled)
	var home *cpReplica
	for _, r := range c.replicas {
		if r.GRPC == eps[len(eps)-1] {
			home = r
		}
	}
	agentsBefore, _ := home.Metric("hangar_controlplane_agents_connected")

	if err := stalled.proc.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stalled.proc.Thaw() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.etcd.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	st := store.New(cli, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	version := cpAgentMetric(c.agents[0], "mcp_hangar_snapshot_version")
	frozen := time.Now()
	toggles := 0
	for ; ; toggles++ {
		if n, _ := home.Metric("hangar_controlplane_slow_agent_disconnects_total"); n >= 1 {
			break
		}
		if toggles == 300 {
			t.Fatalf("%d snapshots while agent C was frozen, and replica %s has not disconnected it", toggles, home.Name)
		}
		drain := st.Drain
		if toggles%2 == 1 {
			drain = st.Undrain
		}
		if err := drain(ctx, group, backup); err != nil {
			t.Fatal(err)
		}
		version = c.waitOthersOn(version)
	}
	disconnected := time.Since(frozen)
	home.WaitLog(`msg=agent_disconnected_slow agent_id=agent-c\b`, 30*time.Second)
	eventually(t, 10*time.Second, "replica "+home.Name+" to drop agent C", func() bool {
		n, _ := home.Metric("hangar_controlplane_agents_connected")
		return n == agentsBefore-1
	})
	// The fan-out goes on: one more change reaches A and B.
	if toggles%2 == 1 {
		err = st.Undrain(ctx, group, backup)
	} else {
		err = st.Drain(ctx, group, backup)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.waitOthersOn(version)

	if err := stalled.proc.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "agent C reconnected", func() bool { return len(cpConnectedTo(stalled)) > len(eps) })
	c.waitConverged()
	t.Logf("C disconnected by %s after %d snapshots of 256 KiB, %s after it froze; A and B applied every one; C resynced after the thaw",
		home.Name, toggles, disconnected.Round(time.Millisecond))
}

// waitOthersOn waits until the leader serves a snapshot newer than prev
// and agents A and B run it; it returns that version.
func (c *cpCluster) waitOthersOn(prev float64) float64 {
	c.t.Helper()
	var v float64
	eventually(c.t, 10*time.Second, fmt.Sprintf("agents A and B on a snapshot newer than %v", prev), func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		var ok bool
		if v, ok = l.Metric("hangar_controlplane_snapshot_version"); !ok || v <= prev {
			return false
		}
		for _, a := range c.agents[:2] {
			if cpAgentMetric(a, "mcp_hangar_snapshot_version") != v {
				return false
			}
		}
		return true
	})
	return v
}
