package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Roles on real processes, with mutual TLS: each certificate's
// Organization gives it one role. An agent certificate is refused by the
// admin API and may connect only as the agent its Common Name names; a
// read-only certificate reads but cannot connect as an agent; a second
// agent with a connected agent's id is refused, naming the first, and the
// snapshot version does not move while it retries.
func TestCPRolesAndAgentIdentity(t *testing.T) {
	skipShort(t)
	ca := newPKI(t, "hangar")
	srvCert, srvKey := ca.issue("replica", true)
	adminCert, adminKey := ca.issue("ops", false, "hangar-admin")
	roCert, roKey := ca.issue("viewer", false, "hangar-read-only")
	agentCert, agentKey := ca.issue("edge-1", false, "hangar-agent")
	noRoleCert, noRoleKey := ca.issue("nobody", false, "acme")

	m1, m2 := startMath(t, primary, ""), startMath(t, backup, "")
	fleet := writeConfig(t, cpRecipe04(t, m1.URL(), m2.URL()))
	etcd := cpStartEtcd(t)
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet,
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-client-ca-file", ca.caFile())
	eventually(t, 10*time.Second, "the replica to lead", r.IsLeader)
	ctl := func(cert, key string, args ...string) ctlResult {
		return runCtl(t, r.GRPC, append([]string{"--ca-file", ca.caFile(), "--cert-file", cert, "--key-file", key}, args...)...)
	}

	// The admin API.
	if res := ctl(adminCert, adminKey, "group", "list"); res.code != 0 {
		t.Errorf("admin certificate, group list:\n%s", res)
	}
	if res := ctl(roCert, roKey, "group", "list"); res.code != 0 {
		t.Errorf("read-only certificate, group list:\n%s", res)
	}
	refused := []struct {
		who        string
		cert, key  string
		args       []string
		wantStderr string
	}{
		{"read-only certificate", roCert, roKey, []string{"member", "drain", "my-mcp-group", primary}, "DrainMember needs the admin role"},
		{"agent certificate", agentCert, agentKey, []string{"group", "list"}, "ListGroups needs the read-only or admin role"},
		{"agent certificate", agentCert, agentKey, []string{"member", "drain", "my-mcp-group", primary}, "DrainMember needs the admin role"},
		{"certificate without a role", noRoleCert, noRoleKey, []string{"group", "list"}, `has no Hangar role`},
	}
	for _, tc := range refused {
		res := ctl(tc.cert, tc.key, tc.args...)
		if res.code != 1 || !strings.Contains(res.stderr, "permission denied") || !strings.Contains(res.stderr, tc.wantStderr) {
			t.Errorf("%s, %s: want exit 1 and permission denied (%s)\n%s", tc.who, strings.Join(tc.args, " "), tc.wantStderr, res)
		}
	}
	if out := ctl(adminCert, adminKey, "group", "status", "my-mcp-group"); strings.Contains(out.stdout, "drained") {
		t.Errorf("a refused drain drained the member:\n%s", out)
	}

	// Agent streams.
	state := func(id string) string { return filepath.Join(t.TempDir(), "state-"+id) }
	tlsFlags := func(cert, key string) []string {
		return []string{"--cp-ca-file", ca.caFile(), "--cp-cert-file", cert, "--cp-key-file", key}
	}
	good := cpStartAgent(t, "edge-1", []string{r.GRPC}, state("good"), tlsFlags(agentCert, agentKey)...)
	good.WaitLog(`msg=probes_assigned version=\d+ members="\[my-mcp my-mcp-backup\]"`, 10*time.Second)
	var version float64

	for _, tc := range []struct {
		name, id, cert, key, want string
	}{
		{"agent certificate, another agent id", "edge-2", agentCert, agentKey, `may connect only as agent \"edge-1\"`},
		{"read-only certificate", "viewer", roCert, roKey, "Connect needs the agent role"},
		{"second agent with a connected id", "edge-1", agentCert, agentKey, `agent id \"edge-1\" is already connected from 127.0.0.1:`},
	} {
		if tc.id == "edge-1" { // the fleet is steady by now
			version, _ = r.Metric("hangar_controlplane_snapshot_version")
		}
		a := cpStartAgent(t, tc.id, []string{r.GRPC}, state(tc.name), append([]string{"--config", fleet}, tlsFlags(tc.cert, tc.key)...)...)
		line := a.WaitLog(`msg=control_plane_disconnected .*code = (PermissionDenied|AlreadyExists)`, 20*time.Second)
		if !strings.Contains(line, tc.want) {
			t.Errorf("%s: the agent's log does not say %q:\n%s", tc.name, tc.want, line)
		}
		eventually(t, 20*time.Second, tc.name+": 3 refusals", func() bool {
			return strings.Count(a.Logs(), "msg=control_plane_disconnected") >= 3
		})
		if strings.Contains(a.Logs(), "msg=snapshot_applied") {
			t.Errorf("%s: the agent got a snapshot:\n%s", tc.name, a.Logs())
		}
		cpStopAgent(a)
	}
	if n, _ := r.Metric("hangar_controlplane_agents_connected"); n != 1 {
		t.Errorf("agents connected %v, want only edge-1", n)
	}
	if v, _ := r.Metric("hangar_controlplane_snapshot_version"); v != version {
		t.Errorf("snapshot version went from %v to %v while a second edge-1 retried; want no change", version, v)
	}
	if strings.Contains(good.Logs(), "msg=control_plane_disconnected") {
		t.Errorf("the connected edge-1 lost its stream to the refused ones:\n%s", good.Logs())
	}
}
