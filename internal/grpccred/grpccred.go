// Package grpccred builds the gRPC client credentials that the agent and
// hangarctl use to reach the control plane: TLS (with a client certificate
// for mTLS) or plaintext to loopback only, and an optional bearer token.
package grpccred

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hangarmesh/hangar/internal/endpoints"
	"github.com/hangarmesh/hangar/internal/secretfile"
)

// Options say how to reach the control plane. Flag is the prefix of the
// command's flag names ("" for --ca-file, "cp-" for --cp-ca-file), used in
// error messages.
type Options struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
	TokenFile                 string
	Insecure                  bool // allow plaintext to a non-loopback endpoint
	Flag                      string
}

// DialOptions returns the transport and per-RPC credentials. TLS is on when
// a CA or a client certificate is given; otherwise plaintext is refused
// for an endpoint off loopback unless Insecure.
func DialOptions(o Options) ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	useTLS := o.CAFile != "" || o.CertFile != ""
	if useTLS {
		tc, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		for _, ep := range o.Endpoints {
			host, _, err := net.SplitHostPort(ep)
			if err != nil {
				return nil, fmt.Errorf("control-plane endpoint %q: want HOST:PORT", ep)
			}
			if !endpoints.IsLoopback(host) && !o.Insecure {
				return nil, fmt.Errorf("refusing plaintext to the control plane at %s: pass --%sca-file (TLS), or --%sinsecure to accept the risk",
					ep, o.Flag, o.Flag)
			}
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.TokenFile != "" {
		// Followed as it changes: each RPC (and stream) sends the file's
		// current token, so rotating it needs no restart.
		tok, err := secretfile.Open("--"+o.Flag+"token-file", o.TokenFile, 1)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: tok, secure: useTLS}))
	}
	return opts, nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--%sca-file: %w", o.Flag, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%sca-file %s holds no PEM certificate", o.Flag, o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--%scert-file/--%skey-file: %w", o.Flag, o.Flag, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// bearer sends "authorization: Bearer <token>" with every RPC.
type bearer struct {
	token  *secretfile.File
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token.Get()}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
