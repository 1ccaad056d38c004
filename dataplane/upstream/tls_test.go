package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// ca_cert_path is followed as it changes (internal/tlsfiles): a new
// connection trusts the file's current CA, and a file that does not load
// keeps the last good one.
func TestCAFileFollowed(t *testing.T) {
	a := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	a.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	a.StartTLS()
	defer a.Close()
	path := filepath.Join(t.TempDir(), "ca.pem")
	put := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	put(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw}))
	conf, err := tlsConfig(fleetfile.TLSConfig{CAFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
		resp, err := c.Get(a.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("trusting the server's CA: %v", err)
	}
	put([]byte("not PEM"))
	if err := get(); err != nil {
		t.Errorf("after a CA file with no PEM (refused, the previous CA stays): %v", err)
	}
	put(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCert(t)}))
	if err := get(); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("after the CA file names another CA: %v, want unknown authority", err)
	}
}

// otherCert is a self-signed CA certificate (DER) that signed nothing the
// test servers present.
func otherCert(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
