package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestDevCertsScript runs scripts/gen-dev-certs.sh (what `make certs`
// runs) and checks that its files are the ones overlays/dev reads, that each
// certificate chains to the CA for its names and usages, and that the
// agent completes a mutual-TLS handshake with the control plane's pair.
func TestDevCertsScript(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: apt-get install openssl (scripts/gen-dev-certs.sh needs it)")
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "../scripts/gen-dev-certs.sh", dir, "hangar")
	cmd.Env = append(os.Environ(), "AGENT_IDS=node-a node-b")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-dev-certs.sh: %v\n%s", err, out)
	}
	for _, f := range devSecretFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("overlays/dev needs %s: %v", f, err)
		}
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("ca.crt: %v", err)
	}
	pair := func(name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		return c
	}
	verify := func(name, dns string, usage x509.ExtKeyUsage) {
		t.Helper()
		if _, err := pair(name).Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: dns, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s for %q (%v): %v", name, dns, usage, err)
		}
	}
	verify("controlplane", "hangar-controlplane.hangar.svc", x509.ExtKeyUsageServerAuth)
	verify("controlplane", "localhost", x509.ExtKeyUsageServerAuth)
	verify("etcd", "hangar-etcd-2.hangar-etcd.hangar.svc", x509.ExtKeyUsageServerAuth)
	verify("etcd", "", x509.ExtKeyUsageClientAuth)
	for _, c := range []string{"agent", "hangarctl", "hangarctl-read-only", "etcd-client"} {
		verify(c, "", x509.ExtKeyUsageClientAuth)
	}
	// The control plane's roles come from the Subject Organization; an
	// agent certificate names its agent ids (CN and DNS SANs).
	for name, org := range map[string]string{"hangarctl-read-only": "hangar-read-only", "hangarctl": "hangar-admin", "agent": "hangar-agent"} {
		if got := pair(name).Leaf.Subject.Organization; !slices.Equal(got, []string{org}) {
			t.Errorf("%s.crt has organization %v, want [%s] (its role)", name, got, org)
		}
	}
	if a := pair("agent").Leaf; a.Subject.CommonName != "node-a" || !slices.Equal(a.DNSNames, []string{"node-a", "node-b"}) {
		t.Errorf("agent.crt names CN %q, SANs %v; want the AGENT_IDS node-a and node-b", a.Subject.CommonName, a.DNSNames)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair("controlplane")},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		errc <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "hangar-controlplane.hangar.svc",
		Certificates: []tls.Certificate{pair("agent")}})
	if err != nil {
		t.Fatalf("agent → control plane handshake: %v", err)
	}
	conn.Close()
	if err := <-errc; err != nil {
		t.Fatalf("control plane side of the handshake: %v", err)
	}
}
