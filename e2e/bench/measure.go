package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// target is a path with its sessions and what was measured on it.
type target struct {
	path
	seq   *mcp.ClientSession   // the one session of the sequential run
	pool  []*mcp.ClientSession // the sessions of the throughput run
	abort context.CancelCauseFunc

	samples   []time.Duration // sequential round trips that succeeded
	seqErrors int
	tput      throughput
	firstErr  error
}

// throughput is what a saturated run achieved.
type throughput struct {
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	Calls     int64   `json:"calls"`  // succeeded
	Errors    int64   `json:"errors"` // failed
	CallsPerS float64 `json:"calls_per_s"`
	elapsed   time.Duration
}

func (t *target) noteErr(err error) {
	if t.firstErr == nil {
		t.firstErr = err
	}
}

// timed makes one call on cs and returns how long it took. The call runs
// on ctx itself, not on a per-call context: the SDK reads a reply's SSE
// stream to its end after it has returned the result, and cancelling the
// call then would close the connection under it, so later calls would pay
// for new connections. Instead a call that takes longer than callTimeout
// aborts the run (through t.abort, when set).
func (t *target) timed(ctx context.Context, cs *mcp.ClientSession) (time.Duration, error) {
	if t.abort != nil {
		watchdog := time.AfterFunc(callTimeout, func() {
			t.abort(fmt.Errorf("a call on %s (%s) got no answer within %s", t.name, t.url, callTimeout))
		})
		defer watchdog.Stop()
	}
	start := time.Now()
	err := t.call(ctx, cs)
	return time.Since(start), err
}

// warmUp makes n unmeasured calls on each target's sequential session. The
// first call of each must succeed: a path that cannot serve one call is
// broken, and its numbers would mean nothing.
func warmUp(ctx context.Context, targets []*target, n int) error {
	for _, t := range targets {
		if _, err := t.timed(ctx, t.seq); err != nil {
			return fmt.Errorf("first call on %s (%s): %w", t.name, t.url, err)
		}
		for range n - 1 {
			if _, err := t.timed(ctx, t.seq); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				t.noteErr(err)
			}
		}
	}
	return nil
}

// measureSequential makes calls round trips per target on its one session,
// in rounds blocks; in each round every target takes a turn, so load that
// comes and goes (other builds on the machine) hits all paths alike.
func measureSequential(ctx context.Context, targets []*target, calls, rounds int) error {
	for r := range rounds {
		block := calls / rounds
		if r == rounds-1 {
			block = calls - block*(rounds-1)
		}
		for i := range targets {
			t := targets[(r+i)%len(targets)] // rotate who goes first
			for range block {
				d, err := t.timed(ctx, t.seq)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					t.seqErrors++
					t.noteErr(err)
					continue
				}
				t.samples = append(t.samples, d)
			}
		}
	}
	return nil
}

// measureThroughput runs every target's session pool flat out for total,
// in slices of at most a second that the targets take in turns.
func measureThroughput(ctx context.Context, targets []*target, total time.Duration) error {
	const sliceLen = time.Second
	for s := 0; time.Duration(s)*sliceLen < total; s++ {
		d := min(sliceLen, total-time.Duration(s)*sliceLen)
		for i := range targets {
			t := targets[(s+i)%len(targets)]
			t.burst(ctx, d)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	for _, t := range targets {
		t.tput.Clients = len(t.pool)
		t.tput.Seconds = t.tput.elapsed.Round(time.Millisecond).Seconds()
		if t.tput.elapsed > 0 {
			t.tput.CallsPerS = math.Round(float64(t.tput.Calls) / t.tput.elapsed.Seconds())
		}
	}
	return nil
}

// burst keeps every pool session busy for d and adds the counts to t.tput.
func (t *target) burst(ctx context.Context, d time.Duration) {
	type count struct {
		ok, failed int64
		err        error
	}
	counts := make([]count, len(t.pool))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, cs := range t.pool {
		wg.Go(func() {
			c := &counts[i]
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := t.timed(ctx, cs); err != nil {
					c.failed++
					if c.err == nil {
						c.err = err
					}
				} else {
					c.ok++
				}
			}
		})
	}
	wg.Wait()
	t.tput.elapsed += time.Since(start)
	for _, c := range counts {
		t.tput.Calls += c.ok
		t.tput.Errors += c.failed
		if c.err != nil && ctx.Err() == nil {
			t.noteErr(c.err)
		}
	}
}
