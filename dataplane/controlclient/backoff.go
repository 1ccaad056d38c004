package controlclient

import (
	"math/rand/v2"
	"time"
)

// backoff computes reconnect delays: initial, doubling per failed attempt up
// to max, each passed through jitter. Not safe for concurrent use.
type backoff struct {
	initial, max time.Duration
	jitter       func(ceiling time.Duration) time.Duration
	ceiling      time.Duration // the next ceiling; 0 = initial
}

// next returns the delay to wait before the next attempt and doubles the
// ceiling for the one after.
func (b *backoff) next() time.Duration {
	if b.ceiling == 0 {
		b.ceiling = b.initial
	}
	d := min(b.ceiling, b.max)
	b.ceiling = min(2*b.ceiling, b.max)
	return b.jitter(d)
}

// reset starts over from initial, after a success.
func (b *backoff) reset() { b.ceiling = 0 }

// fullJitter returns a uniformly random delay in [0, ceiling] ("full
// jitter"), so agents that lost the same replica do not all return at once.
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}
