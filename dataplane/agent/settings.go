package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/hangarmesh/hangar/internal/endpoints"
)

// Settings are the agent's process settings, from flags, environment and
// an optional settings file (through viper, in Run). The fleet file itself
// is parsed by package fleetfile (internal/fleetfile).
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
	MetricsAddr   string // serve /metrics on this host:port instead of the front door's port
	AccessLog     string // one JSON line per call to this file, "-" for standard output (HTTP only); "" = none
	Limits        Limits // the HTTP front door's limits

	// Front-door client sessions (HTTP): idle ones expire; their number is bounded.
	SessionIdle time.Duration // 0: gateway.DefaultSessionIdle
	MaxSessions int           // 0: gateway.DefaultMaxSessions

	// Managed mode: with ControlPlane set the agent reports to the control
	// plane and follows its snapshots. Without ConfigPath it takes the fleet
	// configuration from the snapshots (and from StateDir after a restart).
	ControlPlane []string // replicas, host:port
	AgentID      string   // stable id ("": host name plus a random suffix kept in StateDir)
	StateDir     string   // where accepted snapshots are kept ("" = nowhere)
	Groups       []string // groups served; snapshots carry their state ("" = all)
	CPCAFile     string   // CA that signs the replicas' certificates (TLS)
	CPCertFile   string   // client certificate (mTLS)
	CPKeyFile    string
	CPTokenFile  string // bearer token for the control plane
	CPInsecure   bool   // allow plaintext to a non-loopback replica

	// source is where the settings came from, for reading --settings
	// again on SIGHUP; nil when built by hand.
	source *viper.Viper
}

// Limits bound what HTTP clients may hold of the agent (docs/design.md §6).
// Every field has a default (DefaultLimits); Validate rejects zero and
// negative values except for RateLimit, where 0 turns rate limiting off.
type Limits struct {
	ReadHeaderTimeout time.Duration // to send the request line and headers
	BodyTimeout       time.Duration // to send the request body, once the headers are in
	IdleTimeout       time.Duration // a keep-alive connection may wait for its next request
	MaxConnections    int           // open client connections; more wait in the kernel's accept queue
	MaxRequestBytes   int64         // one request body
	MaxResponseBytes  int64         // one response to a POST (standing GET streams are not bounded)
	RateLimit         float64       // requests per second per client address; 0 = no limit
	RateBurst         int           // requests a client may send at once above RateLimit
}

// DefaultLimits are the front door's limits unless set otherwise.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	BodyTimeout:       30 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxConnections:    2048,
	MaxRequestBytes:   4 << 20,
	MaxResponseBytes:  32 << 20,
	RateBurst:         20,
}

// Validate checks every limit and names the flag of a bad one.
func (l Limits) Validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", l.ReadHeaderTimeout}, {"--body-timeout", l.BodyTimeout}, {"--idle-timeout", l.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: must be a positive duration such as 10s", d.flag, d.v)
		}
	}
	if l.MaxConnections < 1 {
		return fmt.Errorf("--max-connections %d: must be at least 1", l.MaxConnections)
	}
	for _, b := range []struct {
		flag string
		v    int64
	}{{"--max-request-bytes", l.MaxRequestBytes}, {"--max-response-bytes", l.MaxResponseBytes}} {
		if b.v < 1024 {
			return fmt.Errorf("%s %d: must be at least 1024 bytes", b.flag, b.v)
		}
	}
	if l.RateLimit < 0 {
		return fmt.Errorf("--rate-limit %g: must be 0 (off) or a positive number of requests per second", l.RateLimit)
	}
	if l.RateLimit > 0 && l.RateBurst < 1 {
		return fmt.Errorf("--rate-burst %d: must be at least 1 when --rate-limit is set", l.RateBurst)
	}
	return nil
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
	if s.AccessLog == "-" && !s.HTTP {
		return fmt.Errorf("--access-log -: standard output carries MCP in stdio mode; name a file, or serve --http")
	}
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
	if s.SessionIdle < 0 || s.MaxSessions < 0 {
		return errors.New("--session-idle-timeout and --max-sessions must not be negative")
	}
	if (s.CPCertFile == "") != (s.CPKeyFile == "") {
		return errors.New("--cp-cert-file and --cp-key-file go together")
	}
	if s.HTTP {
		if err := s.Limits.Validate(); err != nil {
			return err
		}
	}
	if s.HTTP && !endpoints.IsLoopback(s.Host) && s.AuthTokenFile == "" && !s.UnsafeNoAuth {
		return fmt.Errorf("refusing to serve MCP on %s without authentication: pass --auth-token-file FILE "+
			"(clients then send \"Authorization: Bearer <token>\"), bind a loopback address with --host 127.0.0.1, "+
			"or accept the risk with --unsafe-no-auth", net.JoinHostPort(s.Host, fmt.Sprint(s.Port)))
	}
	return nil
}

// limitFlags names each limit's flag; its environment variable is
// HANGAR_ and the flag in upper case with '_' for '-'.
var limitFlags = []string{"read-header-timeout", "body-timeout", "idle-timeout", "max-connections",
	"max-request-bytes", "max-response-bytes", "rate-limit", "rate-burst"}

func addLimitFlags(f *pflag.FlagSet) {
	d := DefaultLimits
	f.Duration("read-header-timeout", d.ReadHeaderTimeout, "time an HTTP client has to send its request headers")
	f.Duration("body-timeout", d.BodyTimeout, "time an HTTP client has to send a request body once its headers are in")
	f.Duration("idle-timeout", d.IdleTimeout, "time an idle keep-alive connection is kept open")
	f.Int("max-connections", d.MaxConnections, "open HTTP client connections (lowered to leave file descriptors for upstreams); more wait to be accepted")
	f.Int64("max-request-bytes", d.MaxRequestBytes, "largest HTTP request body (413 beyond)")
	f.Int64("max-response-bytes", d.MaxResponseBytes, "largest response to one POST")
	f.Float64("rate-limit", d.RateLimit, "requests per second per client address (token bucket; 0 = off)")
	f.Int("rate-burst", d.RateBurst, "requests a client may send at once above --rate-limit")
}

func bindLimitFlags(v *viper.Viper, f *pflag.FlagSet) {
	for _, name := range limitFlags {
		must(v.BindPFlag(name, f.Lookup(name)))
		must(v.BindEnv(name, limitEnv(name)))
	}
}

// limitsFrom reads the limits strictly: a HANGAR_* variable that is not a
// number (or a duration) is an error naming it, not a silent zero.
func limitsFrom(v *viper.Viper) (Limits, error) {
	var l Limits
	var errs []error
	get := func(name string, parse func(string) error, want string) {
		raw := strings.TrimSpace(v.GetString(name))
		if err := parse(raw); err != nil {
			errs = append(errs, fmt.Errorf("--%s (or %s) %q: not %s", name, limitEnv(name), raw, want))
		}
	}
	dur := func(d *time.Duration) func(string) error {
		return func(s string) (err error) { *d, err = time.ParseDuration(s); return err }
	}
	integer := func(n *int64) func(string) error {
		return func(s string) (err error) { *n, err = strconv.ParseInt(s, 10, 64); return err }
	}
	var conns, burst int64
	get("read-header-timeout", dur(&l.ReadHeaderTimeout), "a duration such as 10s")
	get("body-timeout", dur(&l.BodyTimeout), "a duration such as 30s")
	get("idle-timeout", dur(&l.IdleTimeout), "a duration such as 2m")
	get("max-connections", integer(&conns), "a whole number")
	get("max-request-bytes", integer(&l.MaxRequestBytes), "a number of bytes")
	get("max-response-bytes", integer(&l.MaxResponseBytes), "a number of bytes")
	get("rate-limit", func(s string) (err error) { l.RateLimit, err = strconv.ParseFloat(s, 64); return err }, "a number of requests per second")
	get("rate-burst", integer(&burst), "a whole number")
	l.MaxConnections, l.RateBurst = int(min(conns, 1<<30)), int(min(burst, 1<<30))
	return l, errors.Join(errs...)
}

// limitEnv is the environment variable of a limit's flag.
func limitEnv(name string) string {
	return "HANGAR_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}
