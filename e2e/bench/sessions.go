package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// idleSessions is how many front-door client sessions the memory
// measurement keeps open.
const idleSessions = 1000

// sessionReport is what a client session costs the agent: the latency of
// a new session's first front-door call (which opens the client's own
// session on the member), beside its second; and the agent's memory per
// idle client session that has made one call (so it holds its upstream
// session too).
type sessionReport struct {
	FirstCall     latency `json:"first_call"`
	SecondCall    latency `json:"second_call"`
	IdleSessions  int     `json:"idle_sessions"`
	RSSBeforeKiB  int64   `json:"rss_before_kib"`
	RSSAfterKiB   int64   `json:"rss_after_kib"`
	PerSessionKiB float64 `json:"per_idle_session_kib"`
}

// measureSessions opens idleSessions client sessions on the front door,
// each making two calls, and keeps them open while it reads the agent's
// memory; then it closes them.
func measureSessions(ctx context.Context, f *fleet, d *dialer) (*sessionReport, error) {
	before, err := readMemory(f.agent.PID())
	if err != nil {
		return nil, err
	}
	var first, second []time.Duration
	open := make([]*mcp.ClientSession, 0, idleSessions)
	defer func() { closeAll(open) }()
	for range idleSessions {
		cs, err := d.connect(ctx, f.agentURL())
		if err != nil {
			return nil, err
		}
		open = append(open, cs)
		for _, samples := range []*[]time.Duration{&first, &second} {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			start := time.Now()
			err := callAdd(cctx, cs)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("session %d: %w", len(open), err)
			}
			*samples = append(*samples, time.Since(start))
		}
	}
	after, err := readMemory(f.agent.PID())
	if err != nil {
		return nil, err
	}
	return &sessionReport{
		FirstCall: summarize(first), SecondCall: summarize(second), IdleSessions: idleSessions,
		RSSBeforeKiB: before.RSSKiB, RSSAfterKiB: after.RSSKiB,
		PerSessionKiB: float64(after.RSSKiB-before.RSSKiB) / idleSessions,
	}, nil
}

func (s *sessionReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nnew client sessions on the front door: first call p50 %.3f ms, p99 %.3f ms (opens the session on the member); second call p50 %.3f ms\n",
		s.FirstCall.P50Ms, s.FirstCall.P99Ms, s.SecondCall.P50Ms)
	fmt.Fprintf(w, "%d idle client sessions (each with its session on the member): agent RSS %s → %s, %.1f KiB per session\n",
		s.IdleSessions, mib(s.RSSBeforeKiB), mib(s.RSSAfterKiB), s.PerSessionKiB)
}
