// Package grpccred builds the gRPC client credentials that the agent and
// hangarctl use to reach the control plane: TLS (with a client certificate
// for mTLS) or plaintext to loopback only, and an optional bearer token.
// The TLS files and the token file are followed as they change (packages
// tlsfiles and secretfile), so rotating them needs no restart.
package grpccred

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hangarmesh/hangar/internal/endpoints"
	"github.com/hangarmesh/hangar/internal/secretfile"
	"github.com/hangarmesh/hangar/internal/tlsfiles"
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
	// Logger hears of reloads of the TLS files and the token file
	// (rotations, and files refused); nil logs nothing.
	Logger *slog.Logger
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
		flag := "--" + o.Flag + "token-file"
		tok, err := secretfile.Open(flag, o.TokenFile, 1, func(err error) { logToken(o.Logger, flag, o.TokenFile, err) })
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: tok, secure: useTLS}))
	}
	return opts, nil
}

// tlsConfig follows the CA and client certificate files (package
// tlsfiles): a rotated file is used by the next connection.
func (o Options) tlsConfig() (*tls.Config, error) {
	m, err := tlsfiles.Load(tlsfiles.Files{CertFile: o.CertFile, KeyFile: o.KeyFile, CAFile: o.CAFile,
		CertFlag: "--" + o.Flag + "cert-file", KeyFlag: "--" + o.Flag + "key-file", CAFlag: "--" + o.Flag + "ca-file"}, o.Logger)
	if err != nil {
		return nil, err
	}
	return m.ClientConfig(false), nil
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

// logToken reports a re-read of the token file.
func logToken(log *slog.Logger, flag, path string, err error) {
	switch {
	case log == nil:
	case err != nil:
		log.Error("token_reload_failed", "flag", flag, "path", path, "error", err.Error(), "running", "the previous token")
	default:
		log.Info("token_reloaded", "flag", flag, "path", path)
	}
}
