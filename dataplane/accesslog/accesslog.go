// Package accesslog writes one JSON line per finished call (opt-in with
// the agent's --access-log): when, for which client session, on which group
// and member, which tool, the outcome class, attempts, latency and error
// type. Log implements router.Observer; it ignores every event but Call.
package accesslog

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/dataplane/breaker"
	"github.com/hangarmesh/hangar/dataplane/health"
	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/clock"
)

// Line is one access log entry, as written.
type Line struct {
	Time      time.Time `json:"time"`
	Session   string    `json:"session,omitempty"` // the client session ("" outside one)
	Target    string    `json:"target"`            // the server or group the caller named
	Group     string    `json:"group,omitempty"`   // "" for a server called directly
	Member    string    `json:"mcp_server,omitempty"`
	Tool      string    `json:"tool"`
	Outcome   string    `json:"outcome"` // ok, connect_error, timeout, …
	Attempts  int       `json:"attempts"`
	LatencyMS float64   `json:"latency_ms"`
	ErrorType string    `json:"error_type,omitempty"`
}

// Log writes Lines to w. It is safe for concurrent use; a failed write is
// dropped (a full disk must not fail calls).
type Log struct {
	clk clock.Clock
	mu  sync.Mutex
	enc *json.Encoder
}

// New returns a Log writing to w; clk stamps the lines.
func New(w io.Writer, clk clock.Clock) *Log {
	return &Log{clk: clk, enc: json.NewEncoder(w)}
}

var _ router.Observer = (*Log)(nil)

// Call implements router.Observer: one line per call.
func (l *Log) Call(c router.CallRecord) {
	ln := Line{Time: l.clk.Now().UTC(), Session: c.Session, Target: c.Target, Group: c.Group, Member: c.Member,
		Tool: c.Tool, Outcome: string(c.Class), Attempts: c.Attempts,
		LatencyMS: float64(c.Duration.Microseconds()) / 1000, ErrorType: string(c.ErrType)}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(ln)
}

// MemberState implements router.Observer (ignored).
func (l *Log) MemberState(string, health.State) {}

// Probe implements router.Observer (ignored).
func (l *Log) Probe(string, bool, time.Duration) {}

// Attempt implements router.Observer (ignored: the call's line counts them).
func (l *Log) Attempt(string, string, string, outcome.Class, time.Duration) {}

// Breaker implements router.Observer (ignored).
func (l *Log) Breaker(string, breaker.State) {}

// Rotation implements router.Observer (ignored).
func (l *Log) Rotation(string, string, bool) {}

// ActiveMember implements router.Observer (ignored).
func (l *Log) ActiveMember(string, string) {}

// Failover implements router.Observer (ignored).
func (l *Log) Failover(string, string, string, outcome.Class) {}

// Failback implements router.Observer (ignored).
func (l *Log) Failback(string, string, string) {}
