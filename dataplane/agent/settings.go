package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hangarmesh/hangar/internal/endpoints"
)

// Settings are the agent's process settings, from flags, environment and
// an optional settings file (through viper, in Run). The fleet file itself
// is parsed by package config.
type Settings struct {
	ConfigPath    string // fleet configuration file
	HTTP          bool   // serve Streamable HTTP instead of stdio
	Host          string // HTTP bind host
	Port          int    // HTTP port; 0 picks a free one
	LogFile       string // log destination; "" is standard error
	LogLevel      string // debug, info, warn or error
	JSONLogs      bool
	AuthTokenFile string // bearer token clients must send over HTTP
	UnsafeNoAuth  bool   // allow a non-loopback bind without a token

	// Managed mode: with ControlPlane set the agent reports to the control
	// plane and follows its snapshots. Without ConfigPath it takes the fleet
	// configuration from the snapshots (and from StateDir after a restart).
	ControlPlane []string // replicas, host:port
	AgentID      string   // stable id (default: the host name)
	StateDir     string   // where accepted snapshots are kept ("" = nowhere)
	CPCAFile     string   // CA that signs the replicas' certificates (TLS)
	CPCertFile   string   // client certificate (mTLS)
	CPKeyFile    string
	CPTokenFile  string // bearer token for the control plane
	CPInsecure   bool   // allow plaintext to a non-loopback replica
}

// DefaultConfigPaths are tried, in order, when no fleet file is named.
func DefaultConfigPaths() []string {
	paths := []string{"config.yaml"}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".config", "mcp-hangar", "config.yaml"))
	}
	return paths
}

// Validate checks the settings and fills in the fleet file path from the
// default locations when none was given.
func (s *Settings) Validate() error {
	switch strings.ToLower(s.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", s.LogLevel)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("--port %d: a port is between 0 and 65535", s.Port)
	}
	if s.ConfigPath == "" && len(s.ControlPlane) == 0 {
		for _, p := range DefaultConfigPaths() {
			if _, err := os.Stat(p); err == nil {
				s.ConfigPath = p
				break
			}
		}
		if s.ConfigPath == "" {
			return errors.New("no fleet configuration: pass --config FILE or set MCP_CONFIG " +
				"(looked in " + strings.Join(DefaultConfigPaths(), ", ") + "), or take it from the control plane with --control-plane HOST:PORT")
		}
	}
	if (s.CPCertFile == "") != (s.CPKeyFile == "") {
		return errors.New("--cp-cert-file and --cp-key-file go together")
	}
	if len(s.ControlPlane) > 0 && s.AgentID == "" {
		s.AgentID = hostname()
	}
	if s.HTTP && !endpoints.IsLoopback(s.Host) && s.AuthTokenFile == "" && !s.UnsafeNoAuth {
		return fmt.Errorf("refusing to serve MCP on %s without authentication: pass --auth-token-file FILE "+
			"(clients then send \"Authorization: Bearer <token>\"), bind a loopback address with --host 127.0.0.1, "+
			"or accept the risk with --unsafe-no-auth", net.JoinHostPort(s.Host, fmt.Sprint(s.Port)))
	}
	return nil
}

// readToken reads a bearer token file: the token is its first line.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --auth-token-file: %w", err)
	}
	tok := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
	if len(tok) < 16 {
		return "", fmt.Errorf("--auth-token-file %s: the token must be at least 16 characters", path)
	}
	return tok, nil
}
