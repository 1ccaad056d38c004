package hangarctl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// selfSigned writes a self-signed certificate for 127.0.0.1, good for
// server and client authentication, and returns it with its PEM paths.
func selfSigned(t *testing.T) (cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hangar test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

// TestMutualTLS checks --ca-file, --cert-file and --key-file against a
// control plane that requires client certificates, and that a bearer token
// goes along over TLS.
func TestMutualTLS(t *testing.T) {
	cert, certFile, keyFile := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	})
	f, addr := startFake(t, grpc.Creds(creds))

	r := run(t, "", "--control-plane", addr, "--ca-file", certFile, "--cert-file", certFile, "--key-file", keyFile,
		"--token-file", tokenFile(t, adminToken), "member", "drain", "search", "search-a")
	if r.code != 0 || r.stdout != "drained member search-a of group search\n" {
		t.Fatalf("mTLS drain: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	f.mu.Lock()
	drained := f.drained
	f.mu.Unlock()
	if len(drained) != 1 || drained[0] != "search/search-a" {
		t.Errorf("drained %v, want [search/search-a]", drained)
	}

	// TLS 1.3 reports the missing certificate after the handshake, so the
	// client sees either the alert or a broken pipe: check only the outcome.
	r = run(t, "", "--control-plane", addr, "--ca-file", certFile, "group", "list")
	if r.code != ExitUnreachable || !strings.Contains(r.stderr, "the control plane at "+addr+" refused a connection without a client certificate") {
		t.Errorf("without a client certificate: exit %d, stderr %q; want 2 saying %s refused it", r.code, r.stderr, addr)
	}
}
