package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
)

// With the replica serving TLS, the embedded etcd requires the client
// certificate generated in <data-dir>/etcd-tls: the replica reads and writes,
// a local client without the certificate cannot read /hangar/config, and a
// restart reuses the same CA.
func TestEmbeddedEtcdRequiresClientCert(t *testing.T) {
	dir := t.TempDir()
	s := Settings{DataDir: filepath.Join(dir, "etcd"), TLSCertFile: "replica.crt"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, stop, err := connectEtcd(ctx, s, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/hangar/config", "secret"); err != nil {
		t.Fatalf("the replica's own client: %v", err)
	}
	eps := cli.Endpoints()
	tlsDir := filepath.Join(s.DataDir, "etcd-tls")
	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "server.crt", "server.key", "client.crt", "client.key"} {
		if st, err := os.Stat(filepath.Join(tlsDir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}

	// A client that trusts the server but has no certificate, and a plaintext one.
	noCert, err := (transport.TLSInfo{TrustedCAFile: filepath.Join(tlsDir, "ca.crt")}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]clientv3.Config{
		"TLS without a client certificate": {Endpoints: eps, TLS: noCert, DialTimeout: 2 * time.Second},
		"plaintext":                        {Endpoints: eps, DialTimeout: 2 * time.Second},
	} {
		other, err := clientv3.New(cfg)
		if err != nil {
			continue // refused at dial: fine
		}
		gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := other.Get(gctx, "/hangar/config")
		gcancel()
		other.Close()
		if err == nil {
			t.Errorf("%s client read the store: %v", name, resp.Kvs)
		}
	}
	stop()

	cli, stop, err = connectEtcd(ctx, s, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer stop()
	resp, err := cli.Get(ctx, "/hangar/config")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "secret" {
		t.Fatalf("after a restart the replica reads %v, %v; want secret", resp, err)
	}
	if again, _ := os.ReadFile(filepath.Join(tlsDir, "ca.crt")); !bytes.Equal(again, ca) {
		t.Error("the restart generated a new CA; want the existing one reused")
	}
}

// An external etcd over mTLS: the replica's client loads --etcd-ca-file,
// --etcd-cert-file and --etcd-key-file through tlsfiles and reads and
// writes; a CA that did not sign the server is refused.
func TestExternalEtcdMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki, err := etcdnode.EnsureLocalPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := etcdnode.Start(ctx, etcdnode.Config{Dir: filepath.Join(dir, "etcd"), ClientURL: "https://127.0.0.1:0",
		ClientTLS: etcdnode.TLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, TrustedCAFile: pki.CAFile, ClientCertAuth: true},
		Logger:    slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	s := Settings{EtcdEndpoints: node.Endpoints(), EtcdCAFile: pki.CAFile, EtcdCertFile: pki.ClientCertFile, EtcdKeyFile: pki.ClientKeyFile}
	cli, stop, err := connectEtcd(ctx, s, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("connect over mTLS: %v", err)
	}
	if _, err := cli.Put(ctx, "/hangar/k", "v"); err != nil {
		t.Errorf("put over mTLS: %v", err)
	}
	stop()

	other, err := etcdnode.EnsureLocalPKI(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	s.EtcdCAFile = other.CAFile
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if _, stop, err := connectEtcd(sctx, s, slog.New(slog.DiscardHandler)); err == nil {
		stop()
		t.Error("a client trusting another CA connected")
	}
}
