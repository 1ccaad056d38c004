package etcdnode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// LocalPKI is a private CA with a server and a client certificate for a
// node reached only on loopback: the node requires the client certificate,
// so no other local process can read it.
type LocalPKI struct {
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
}

// pkiValidity is how long the generated certificates are valid.
const pkiValidity = 10 * 365 * 24 * time.Hour

// EnsureLocalPKI returns the PKI in dir (mode 0700, files 0600), generating
// it when a file is missing or does not load; an existing one is reused.
func EnsureLocalPKI(dir string) (LocalPKI, error) {
	p := LocalPKI{
		CAFile: filepath.Join(dir, "ca.crt"), ServerCertFile: filepath.Join(dir, "server.crt"),
		ServerKeyFile: filepath.Join(dir, "server.key"), ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile: filepath.Join(dir, "client.key"),
	}
	if p.loads() {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, fmt.Errorf("etcdnode: create %s: %w", dir, err)
	}
	if err := p.generate(); err != nil {
		return p, fmt.Errorf("etcdnode: generate certificates in %s: %w", dir, err)
	}
	return p, nil
}

func (p LocalPKI) loads() bool {
	_, e1 := tls.LoadX509KeyPair(p.ServerCertFile, p.ServerKeyFile)
	_, e2 := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile)
	_, e3 := os.Stat(p.CAFile)
	return e1 == nil && e2 == nil && e3 == nil
}

func (p LocalPKI) generate() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := template("hangar embedded etcd CA")
	ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage = true, true, x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER); err != nil {
		return err
	}
	srv := template("localhost")
	srv.DNSNames, srv.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if err := issue(srv, ca, caKey, p.ServerCertFile, p.ServerKeyFile); err != nil {
		return err
	}
	cli := template("hangar-controlplane")
	cli.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return issue(cli, ca, caKey, p.ClientCertFile, p.ClientKeyFile)
}

func template(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(pkiValidity),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

// issue signs tmpl with the CA and writes its certificate and key.
func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(keyFile, "EC PRIVATE KEY", kder); err != nil {
		return err
	}
	return writePEM(certFile, "CERTIFICATE", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
