package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hangarmesh/hangar/internal/endpoints"
)

// Settings are a replica's process settings, from flags, HANGAR_*
// environment variables and an optional settings file (through viper).
type Settings struct {
	Listen        string // gRPC: agent and admin services
	MetricsListen string // HTTP: /metrics, /healthz, /readyz
	Advertise     string // address other parties use to reach Listen
	Name          string // unique replica name

	DataDir       string   // embedded etcd data (when EtcdEndpoints is empty)
	EtcdEndpoints []string // external etcd cluster
	EtcdCAFile    string
	EtcdCertFile  string
	EtcdKeyFile   string
	EtcdPrefix    string
	// EtcdUsername and EtcdPasswordFile authenticate to an external
	// cluster with etcd's own users (RBAC).
	EtcdUsername     string
	EtcdPasswordFile string

	FleetConfig string // fleet file to store in etcd when it differs

	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string // require client certificates signed by this CA (mTLS)
	AuthTokenFile   string // require this bearer token; it has admin rights
	// ReadOnlyTokenFile holds a second bearer token with read-only rights
	// on the admin API; agents cannot connect with it.
	ReadOnlyTokenFile string
	// AgentTokensFile maps agent ids to bearer tokens with the agent role,
	// one "AGENT_ID TOKEN" per line.
	AgentTokensFile string
	Insecure        bool // allow plaintext on a non-loopback address

	ElectionTTL time.Duration
	LogLevel    string
	JSONLogs    bool
}

// Validate checks the settings and fills in defaults derived from others.
func (s *Settings) Validate() error {
	host, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT: %w", s.Listen, err)
	}
	if _, _, err := net.SplitHostPort(s.MetricsListen); err != nil {
		return fmt.Errorf("--metrics-listen %q: want HOST:PORT: %w", s.MetricsListen, err)
	}
	if s.ElectionTTL < time.Second {
		return fmt.Errorf("--election-ttl %s: etcd leases last at least 1s", s.ElectionTTL)
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if s.TLSClientCAFile != "" && s.TLSCertFile == "" {
		return errors.New("--tls-client-ca-file (mTLS) needs --tls-cert-file and --tls-key-file")
	}
	if s.TLSCertFile == "" && !endpoints.IsLoopback(host) && !s.Insecure {
		return fmt.Errorf("refusing plaintext gRPC on %s: agents' reports and routing would cross the network unprotected; "+
			"pass --tls-cert-file/--tls-key-file (and --tls-client-ca-file or --auth-token-file to authenticate agents), "+
			"listen on loopback, or accept the risk with --insecure", s.Listen)
	}
	if (s.ReadOnlyTokenFile != "" || s.AgentTokensFile != "") && s.AuthTokenFile == "" && s.TLSClientCAFile == "" {
		return errors.New("--read-only-token-file or --agent-tokens-file alone would leave no caller with the admin role: " +
			"pass --auth-token-file (the admin token) or --tls-client-ca-file (client certificates) too")
	}
	if (s.EtcdUsername == "") != (s.EtcdPasswordFile == "") {
		return errors.New("--etcd-username and --etcd-password-file go together")
	}
	if s.EtcdUsername != "" && len(s.EtcdEndpoints) == 0 {
		return errors.New("--etcd-username is for an external cluster: pass --etcd-endpoints too")
	}
	if len(s.EtcdEndpoints) == 0 && s.DataDir == "" {
		return errors.New("no etcd: pass --data-dir for the embedded single node or --etcd-endpoints for a cluster")
	}
	if s.Name == "" {
		h, _ := os.Hostname()
		s.Name = strings.ReplaceAll(h+"-"+port, "/", "-")
	}
	if s.EtcdPrefix == "" {
		s.EtcdPrefix = "/hangar/"
	}
	return nil
}
