package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki writes a CA and certificates it signs into a temp dir.
type pki struct {
	t   *testing.T
	dir string
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), ca: ca, key: key}
	p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *pki) caFile() string { return filepath.Join(p.dir, p.ca.Subject.CommonName+"-ca.pem") }

// issue signs a certificate for name (a server on 127.0.0.1 or a client,
// with the given Subject Organizations) and returns the certificate and
// key files.
func (p *pki) issue(name string, server bool, orgs ...string) (certFile, keyFile string) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

// The agents' stream to the control plane with mutual TLS: an agent with a
// certificate from the agents' CA gets its fleet and snapshots; one without
// a certificate, with one from another CA, or in plaintext, never connects.
func TestCPMutualTLS(t *testing.T) {
	skipShort(t)
	ca, rogue := newPKI(t, "hangar"), newPKI(t, "rogue")
	srvCert, srvKey := ca.issue("replica", true)
	agentCert, agentKey := ca.issue("good", false, "hangar-agent")
	rogueCert, rogueKey := rogue.issue("intruder", false, "hangar-agent")

	m1, m2 := startMath(t, primary, ""), startMath(t, backup, "")
	fleet := writeConfig(t, cpRecipe04(t, m1.URL(), m2.URL()))
	etcd := cpStartEtcd(t)
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet,
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-client-ca-file", ca.caFile())
	eventually(t, 10*time.Second, "the replica to lead", r.IsLeader)

	// Trusted: no --config, so it serves only once a snapshot arrived.
	good := cpStartAgent(t, "good", []string{r.GRPC}, filepath.Join(t.TempDir(), "state"),
		"--cp-ca-file", ca.caFile(), "--cp-cert-file", agentCert, "--cp-key-file", agentKey)
	good.WaitLog(`msg=snapshot_applied version=\d+`, 10*time.Second)
	if res, err := callOne(t.Context(), good.Connect(), "my-mcp-group", "add", map[string]any{"a": 1, "b": 2}); err != nil || !res.Success {
		t.Fatalf("a call through the trusted agent: %+v, %v", res, err)
	}

	// Untrusted agents run from a local fleet file and keep failing to attach.
	untrusted := map[string][]string{
		"no-cert":   {"--cp-ca-file", ca.caFile()},
		"rogue":     {"--cp-ca-file", ca.caFile(), "--cp-cert-file", rogueCert, "--cp-key-file", rogueKey},
		"plaintext": nil,
	}
	for id, flags := range untrusted {
		a := cpStartAgent(t, id, []string{r.GRPC}, filepath.Join(t.TempDir(), "state-"+id), append([]string{"--config", fleet}, flags...)...)
		a.WaitLog(`msg=control_plane_disconnected .*failures=2`, 15*time.Second)
		if strings.Contains(a.Logs(), "msg=control_plane_connected") || strings.Contains(a.Logs(), "msg=snapshot_applied") {
			t.Errorf("agent %s attached to a replica that requires a client certificate:\n%s", id, a.Logs())
		}
	}
	if n, _ := r.Metric("hangar_controlplane_agents_connected"); n != 1 {
		t.Errorf("agents connected %v, want only the trusted one", n)
	}
}

// A bearer token over TLS: the right token attaches, a wrong one is refused
// as unauthenticated.
func TestCPBearerToken(t *testing.T) {
	skipShort(t)
	ca := newPKI(t, "hangar")
	srvCert, srvKey := ca.issue("replica", true)
	dir := t.TempDir()
	token, wrong := filepath.Join(dir, "token"), filepath.Join(dir, "wrong")
	if err := os.WriteFile(token, []byte("the-right-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("not-the-right-token-000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m1, m2 := startMath(t, primary, ""), startMath(t, backup, "")
	fleet := writeConfig(t, cpRecipe04(t, m1.URL(), m2.URL()))
	etcd := cpStartEtcd(t)
	r := cpStartReplica(t, "r1", etcd.Endpoint, "--fleet-config", fleet,
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--auth-token-file", token)
	eventually(t, 10*time.Second, "the replica to lead", r.IsLeader)

	good := cpStartAgent(t, "good", []string{r.GRPC}, filepath.Join(t.TempDir(), "state"),
		"--cp-ca-file", ca.caFile(), "--cp-token-file", token)
	good.WaitLog(`msg=snapshot_applied version=\d+`, 10*time.Second)

	bad := cpStartAgent(t, "bad", []string{r.GRPC}, filepath.Join(t.TempDir(), "state-bad"),
		"--config", fleet, "--cp-ca-file", ca.caFile(), "--cp-token-file", wrong)
	line := bad.WaitLog(`msg=control_plane_disconnected`, 10*time.Second)
	if !strings.Contains(line, "Unauthenticated") {
		t.Errorf("a wrong token: %s; want Unauthenticated", line)
	}
	if strings.Contains(bad.Logs(), "msg=snapshot_applied") {
		t.Errorf("an agent with a wrong token got a snapshot:\n%s", bad.Logs())
	}
}
