package fleetfile

import "time"

// Mode is how a server entry of the fleet file is reached.
type Mode string

// The modes of the seed format.
const (
	ModeRemote     Mode = "remote"     // Streamable HTTP upstream at Endpoint
	ModeSubprocess Mode = "subprocess" // stdio child process started from Command
	ModeGroup      Mode = "group"      // a group of other servers
)

// Strategy names a group's load-balancing strategy.
type Strategy string

// The strategies a group may name.
const (
	StrategyPriority           Strategy = "priority"
	StrategyRoundRobin         Strategy = "round_robin"
	StrategyWeightedRoundRobin Strategy = "weighted_round_robin"
	StrategyLeastConnections   Strategy = "least_connections"
	StrategyRandom             Strategy = "random"
)

// Fleet is a parsed, validated and defaulted fleet configuration file.
// A Fleet is immutable once returned by Parse or Load.
type Fleet struct {
	// Source names where the fleet came from (a file path), for messages.
	Source string
	// Servers holds the remote and subprocess entries by id.
	Servers map[string]*Server
	// Groups holds the group entries by id.
	Groups map[string]*Group
	// Order lists every id (servers and groups) in file order; a server
	// defined inline in a group's members comes right after that group.
	Order []string
	// Raw is the file exactly as parsed, for storing and diffing the
	// configuration that is in force.
	Raw []byte
}

// Server is one upstream MCP server: a remote endpoint or a stdio child.
type Server struct {
	ID          string
	Mode        Mode // ModeRemote or ModeSubprocess
	Description string

	// Endpoint is the Streamable HTTP URL of a remote server.
	Endpoint string
	// Headers are extra HTTP headers sent to a remote server, keyed by
	// canonical name: http.headers plus the one the auth block yields
	// (Authorization or the API-key header). Nil when there are none.
	Headers map[string]string
	// TLS configures certificate checks against a remote https server.
	TLS TLSConfig

	// Command is the argv of a subprocess server.
	Command []string
	// Env is the extra environment of a subprocess server.
	Env map[string]string
	// IdleTTL stops an idle subprocess after this long; zero (the default)
	// never stops it.
	IdleTTL time.Duration

	// MaxConcurrency caps the calls in flight to this server on one agent;
	// zero leaves the agent's default per-server limit.
	MaxConcurrency int

	// HealthCheckInterval is the active probe period (default 30 s).
	HealthCheckInterval time.Duration
	// MaxConsecutiveFailures failed probes make the server DEGRADED (default 3).
	MaxConsecutiveFailures int

	HTTP HTTPConfig
}

// TLSConfig is the seed's tls block of a remote server.
type TLSConfig struct {
	// CAFile is a PEM file of the CAs to trust instead of the system pool
	// (as MCP Hangar's ca_cert_path); "" trusts the system pool.
	CAFile string
	// InsecureSkipVerify skips certificate checks (verify_ssl: false).
	InsecureSkipVerify bool
}

// HTTPConfig holds the timeouts used against a remote server.
type HTTPConfig struct {
	ConnectTimeout time.Duration // default 10 s
	ReadTimeout    time.Duration // default 30 s
}

// Group is a set of servers that share traffic under a strategy.
type Group struct {
	ID          string
	Description string
	Strategy    Strategy // default round_robin
	MinHealthy  int      // default 1
	Members     []Member // in file order

	Health         GroupHealth
	CircuitBreaker CircuitBreaker
	Failover       Failover
	ToolAccess     ToolAccess
}

// Member is one server of a group.
type Member struct {
	ID       string
	Priority int // 1..100, default 1; lower serves first under priority
	Weight   int // 1..100, default 1
}

// GroupHealth configures passive rotation and, in the control plane, the
// aggregation of agents' views.
type GroupHealth struct {
	UnhealthyThreshold int     // default 2
	HealthyThreshold   int     // default 1
	Quorum             float64 // default 0.5, in (0,1]
	Probers            int     // default 2
	// BaseEjection is how long a member stays out of local rotation at most
	// after its first ejection, unless a probe passes sooner; it doubles on
	// each consecutive ejection up to MaxEjection (default 5 s and 60 s).
	BaseEjection time.Duration
	MaxEjection  time.Duration
	// ConfirmTimeout is the deadline of the control plane's confirmation
	// probe of a member one agent ejected on path evidence (default 1 s).
	ConfirmTimeout time.Duration
}

// CircuitBreaker configures the group breaker.
type CircuitBreaker struct {
	FailureThreshold int           // default 10
	ResetTimeout     time.Duration // default 60 s
	ProbeCount       int           // default 1
	CountToolErrors  bool          // default false
}

// Failover configures retries on the next member inside one call.
type Failover struct {
	MaxAttempts int      // default 2 (the first attempt counts)
	RetryOn     []string // tool names retried on timeout/transport/server errors even if not annotated
	// AttemptTimeout ends an attempt of a tool safe to repeat and moves the
	// call to the next member; zero means adaptive (a multiple of the
	// member's recent p99 for the tool, at least 250 ms).
	AttemptTimeout time.Duration
}

// ToolAccess configures how a group's tools are offered to clients.
type ToolAccess struct {
	// Mode is "" (only through hangar_call) or "front_door" (also listed as ordinary tools).
	Mode string
}
