// Package backoff is the one reconnect backoff of both planes: delays that
// start at an initial value and double per failed attempt up to a cap
// (github.com/cenkalti/backoff/v5's exponential backoff), each passed
// through a jitter, and waited on an injected clock so tests drive them
// with a fake one. The agent's control client (reconnecting to the
// replicas), a replica's etcd session loop and the store's etcd watches
// use it. A Backoff is not safe for concurrent use.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	cenkalti "github.com/cenkalti/backoff/v5"

	"github.com/hangarmesh/hangar/internal/clock"
)

// Jitter maps a ceiling to the delay waited.
type Jitter func(ceiling time.Duration) time.Duration

// Backoff computes and waits reconnect delays.
type Backoff struct {
	exp    cenkalti.ExponentialBackOff
	max    time.Duration
	jitter Jitter
	clk    clock.Clock
}

// New returns a Backoff whose ceilings go initial, 2×initial, ... up to max,
// each delay drawn by jitter (nil: none) and waited on clk (nil: the wall
// clock).
func New(clk clock.Clock, initial, max time.Duration, jitter Jitter) *Backoff {
	if clk == nil {
		clk = clock.Real{}
	}
	if jitter == nil {
		jitter = func(d time.Duration) time.Duration { return d }
	}
	return &Backoff{
		exp: cenkalti.ExponentialBackOff{InitialInterval: initial, MaxInterval: max, Multiplier: 2},
		max: max, jitter: jitter, clk: clk,
	}
}

// Next returns the delay to wait before the next attempt and doubles the
// ceiling for the one after.
func (b *Backoff) Next() time.Duration {
	return b.jitter(min(b.exp.NextBackOff(), b.max))
}

// Reset starts over from the initial ceiling, after a success.
func (b *Backoff) Reset() { b.exp.Reset() }

// Wait waits the Next delay; false if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.clk, b.Next()) }

// Sleep waits d on clk; false if ctx ended first.
func Sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// Full draws a delay uniformly in [0, ceiling] ("full jitter"): many
// clients that lost the same server do not all come back at once.
func Full(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Equal draws a delay uniformly in [ceiling/2, ceiling] ("equal jitter"):
// spread, but never much shorter than the ceiling.
func Equal(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}
