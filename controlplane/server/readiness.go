package server

import (
	"sync"
	"time"

	"github.com/hangarmesh/hangar/internal/backoff"
	"github.com/hangarmesh/hangar/internal/clock"
)

// readiness is whether a replica holds an etcd session. It starts not
// ready ("starting"). Safe for concurrent use.
type readiness struct {
	mu    sync.Mutex
	ready bool
	since time.Time // when it last became not ready; zero while starting
	cause string
}

func (h *readiness) get() (bool, time.Time, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready && h.cause == "" {
		return false, h.since, "starting: no etcd session yet"
	}
	return h.ready, h.since, h.cause
}

// up marks the replica ready and returns how long it was not, 0 if it was
// starting.
func (h *readiness) up(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var down time.Duration
	if !h.ready && !h.since.IsZero() {
		down = now.Sub(h.since)
	}
	h.ready, h.cause, h.since = true, "", time.Time{}
	return down
}

// lost marks the replica not ready because of err, keeping the time it
// first became so.
func (h *readiness) lost(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready || h.since.IsZero() {
		h.since = now
	}
	h.ready, h.cause = false, errString(err)
}

// newRetry is the backoff between attempts at a new session: capped,
// exponential, jittered, reset after a session was established.
func newRetry(clk clock.Clock) *backoff.Backoff {
	return backoff.New(clk, 100*time.Millisecond, 2*time.Second, backoff.Equal)
}
