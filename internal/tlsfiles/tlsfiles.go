// Package tlsfiles loads TLS material (a certificate and its key, a CA
// bundle) from PEM files and follows the files as they change, so a
// rotated certificate is served, or trusted, without a restart. It is the
// one TLS loader of the control plane's gRPC server, the agent's and
// hangarctl's control-plane client, and the agent's HTTPS upstreams.
//
// Every handshake stats the files (secretfile.Followed) and, if one
// changed, loads them again before answering: the new connection gets the
// new material, connections already open keep theirs. Reload (SIGHUP)
// loads them again unconditionally. Material that does not load (a file
// missing or half-written, a key that does not match its certificate, a
// CA file with no certificate) is refused: the last good material stays in
// force, and the error is logged once per change of the files.
//
// The configurations use the crypto/tls hooks meant for this:
// GetConfigForClient on a server (certificate and client CAs per
// handshake), GetClientCertificate on a client, and on a client with a CA
// file, VerifyConnection against the current CA pool (the documented way
// to verify with a pool chosen at handshake time).
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/hangarmesh/hangar/internal/secretfile"
)

// Files names the PEM files and the settings that give them, for errors
// and logs. Each path may be "": CertFile and KeyFile go together.
type Files struct {
	CertFile, KeyFile, CAFile string
	// CertFlag, KeyFlag and CAFlag name the settings in messages
	// ("--tls-cert-file", "ca_cert_path").
	CertFlag, KeyFlag, CAFlag string
}

// Material is the followed TLS material. It is safe for concurrent use.
type Material struct {
	files Files
	cur   *secretfile.Followed[material]
}

type material struct {
	cert *tls.Certificate // nil without CertFile
	pool *x509.CertPool   // nil without CAFile
}

// Load reads the files; it fails if they do not load, naming the setting.
// log hears of every later reload: tls_reloaded (with the new
// certificate's serial) or tls_reload_failed (with the reason; the
// previous material stays).
func Load(files Files, log *slog.Logger) (*Material, error) {
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, fmt.Errorf("%s and %s go together", files.CertFlag, files.KeyFlag)
	}
	m := &Material{files: files}
	var paths []string
	for _, p := range []string{files.CertFile, files.KeyFile, files.CAFile} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	cur, err := secretfile.Follow(paths, files.load, func(cur material, err error) { m.logReload(log, cur, err) })
	if err != nil {
		return nil, err
	}
	m.cur = cur
	return m, nil
}

// load reads the files once.
func (f Files) load() (material, error) {
	var m material
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return m, fmt.Errorf("%s %s / %s %s: %w", f.CertFlag, f.CertFile, f.KeyFlag, f.KeyFile, err)
		}
		m.cert = &cert
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return m, fmt.Errorf("%s: %w", f.CAFlag, err)
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(pem) {
			return m, fmt.Errorf("%s %s holds no PEM certificate", f.CAFlag, f.CAFile)
		}
	}
	return m, nil
}

func (m *Material) logReload(log *slog.Logger, cur material, err error) {
	if log == nil {
		return
	}
	f := m.files
	if err != nil {
		log.Error("tls_reload_failed", "cert", f.CertFile, "ca", f.CAFile, "error", err.Error(),
			"running", "the previous certificate and CA (serial "+serial(cur.cert)+"): fix the files (PEM blocks, a key matching the certificate); they are loaded again when they change or on SIGHUP")
		return
	}
	log.Info("tls_reloaded", "cert", f.CertFile, "ca", f.CAFile, "serial", serial(cur.cert))
}

// serial is the certificate's serial number in hex, "" without one.
func serial(c *tls.Certificate) string {
	if c == nil || c.Leaf == nil {
		return ""
	}
	return c.Leaf.SerialNumber.Text(16)
}

// Reload loads the files again now (SIGHUP); on error the previous
// material stays and the error says why.
func (m *Material) Reload() error { return m.cur.Reload() }

// Err is why the last reload failed, or nil.
func (m *Material) Err() error { return m.cur.Err() }

// Certificate is the certificate in force (after checking the files), nil
// without CertFile.
func (m *Material) Certificate() *tls.Certificate { return m.cur.Get().cert }

// ServerConfig is a server's TLS configuration: the current certificate,
// and with a CA file, client certificates required and verified against
// the current CA (mTLS).
func (m *Material) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cur := m.cur.Get()
			if cur.cert == nil {
				return nil, errors.New("tlsfiles: a server needs a certificate")
			}
			c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cur.cert}}
			if cur.pool != nil {
				c.ClientCAs, c.ClientAuth = cur.pool, tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}

// ClientConfig is a client's TLS configuration: with a certificate, it is
// presented when the server asks (mTLS); with a CA file, servers are
// verified against the current CA instead of the system pool.
// insecureSkipVerify turns server verification off (the user's explicit
// choice, as verify_ssl: false).
func (m *Material) ClientConfig(insecureSkipVerify bool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify} //nolint:gosec // the caller's explicit choice, or replaced by VerifyConnection below
	if m.files.CertFile != "" {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.cur.Get().cert, nil
		}
	}
	if m.files.CAFile != "" && !insecureSkipVerify {
		// crypto/tls verifies against a pool fixed in the Config; to use the
		// current one, skip its check and verify here the same way
		// (crypto/tls's ExampleConfig_verifyConnection).
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			return verify(cs, m.cur.Get().pool)
		}
	}
	return c
}

// verify checks the server's chain against pool and its name.
func verify(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsfiles: the server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: cs.ServerName, Roots: pool, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tlsfiles: verify the server's certificate: %w", err)
	}
	return nil
}
