package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/testutil"
)

// ca is a test CA that issues certificates with increasing serials.
type ca struct {
	t      *testing.T
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial int64
}

func newCA(t *testing.T, name string, serial int64) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{t: t, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: serial}
}

// issue returns a certificate (for 127.0.0.1, server and client use) and
// its key, in PEM.
func (c *ca) issue() (certPEM, keyPEM []byte) {
	c.t.Helper()
	c.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(c.serial), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		c.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// replace writes data to path by rename, as a rotation does.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serve accepts TLS connections with conf until the test ends and
// completes each handshake.
func serve(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// served dials addr and returns the serial of the certificate the server
// presented.
func served(addr string, conf *tls.Config) (int64, error) {
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// A server's certificate and a client's CA are rotated without a restart:
// each new connection uses the files' current material; a broken
// rotation (a key of another certificate, a CA file with no PEM) keeps the
// last good material and logs why.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	authority := newCA(t, "one", 100)
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	cert, key := authority.issue()
	replace(t, certFile, cert)
	replace(t, keyFile, key)
	replace(t, caFile, authority.pem)

	var logs testutil.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv, err := Load(Files{CertFile: certFile, KeyFile: keyFile, CertFlag: "--tls-cert-file", KeyFlag: "--tls-key-file"}, log)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Load(Files{CAFile: caFile, CAFlag: "--ca-file"}, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv.ServerConfig())
	want := func(what string, serial int64) {
		t.Helper()
		got, err := served(addr, cli.ClientConfig(false))
		if err != nil || got != serial {
			t.Fatalf("%s: served serial %d, %v; want %d", what, got, err, serial)
		}
	}
	want("at start", 101)

	cert, key = authority.issue()
	replace(t, certFile, cert)
	replace(t, keyFile, key)
	want("after rotating the certificate", 102)

	// The certificate of one pair with the key of another: refused.
	cert2, _ := authority.issue()
	replace(t, certFile, cert2)
	want("with a key that does not match", 102)
	if srv.Err() == nil || !strings.Contains(logs.String(), "msg=tls_reload_failed") || !strings.Contains(logs.String(), "--tls-cert-file") {
		t.Fatalf("a mismatched key: Err %v, logs:\n%s\nwant tls_reload_failed naming --tls-cert-file", srv.Err(), logs.String())
	}
	// A missing key file: refused too.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	want("with the key file missing", 102)

	// A new CA: the client trusts it once its CA file says so; a CA file
	// holding no PEM keeps the old CA.
	other := newCA(t, "two", 200)
	cert, key = other.issue()
	replace(t, certFile, cert)
	replace(t, keyFile, key)
	if _, err := served(addr, cli.ClientConfig(false)); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a server certificate from a CA the client does not trust yet: %v, want unknown authority", err)
	}
	replace(t, caFile, []byte("not PEM\n"))
	if _, err := served(addr, cli.ClientConfig(false)); err == nil || cli.Err() == nil || !strings.Contains(cli.Err().Error(), "holds no PEM certificate") {
		t.Fatalf("a CA file with no PEM: dial %v, Err %v; want the old CA kept and the reason", err, cli.Err())
	}
	replace(t, caFile, other.pem)
	want("after the client's CA file names the new CA", 201)
	if !strings.Contains(logs.String(), "msg=tls_reloaded") || !strings.Contains(logs.String(), "serial=c9") {
		t.Errorf("logs:\n%s\nwant tls_reloaded with the new serial (c9)", logs.String())
	}
}

// With a CA file a server requires client certificates (mTLS) from it;
// a client presents its current certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	authority := newCA(t, "one", 100)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		replace(t, p, data)
		return p
	}
	sc, sk := authority.issue()
	cc, ck := authority.issue()
	srv, err := Load(Files{CertFile: write("s.pem", sc), KeyFile: write("s-key.pem", sk), CAFile: write("ca.pem", authority.pem)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv.ServerConfig())
	with, err := Load(Files{CertFile: write("c.pem", cc), KeyFile: write("c-key.pem", ck), CAFile: filepath.Join(dir, "ca.pem")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	without, err := Load(Files{CAFile: filepath.Join(dir, "ca.pem")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := served(addr, with.ClientConfig(false)); err != nil {
		t.Errorf("a client with a certificate from the CA: %v", err)
	}
	// TLS 1.3 reports a missing client certificate on the first read.
	c, err := tls.Dial("tcp", addr, without.ClientConfig(false))
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("a client without a certificate: %v, want the server to require one", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	replace(t, junk, []byte("junk"))
	for name, tt := range map[string]struct {
		f    Files
		want string
	}{
		"cert without key": {Files{CertFile: junk, CertFlag: "--tls-cert-file", KeyFlag: "--tls-key-file"}, "--tls-cert-file and --tls-key-file go together"},
		"not a key pair":   {Files{CertFile: junk, KeyFile: junk, CertFlag: "--tls-cert-file", KeyFlag: "--tls-key-file"}, "--tls-cert-file " + junk},
		"missing CA":       {Files{CAFile: filepath.Join(dir, "nope"), CAFlag: "ca_cert_path"}, "ca_cert_path"},
		"CA with no PEM":   {Files{CAFile: junk, CAFlag: "--ca-file"}, "holds no PEM certificate"},
	} {
		if _, err := Load(tt.f, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tt.want)
		}
	}
}
