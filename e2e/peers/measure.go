package peers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// target is one path of the sequential and saturated runs.
type target struct {
	name string
	url  string
	tr   transport
	tool string

	seq  *mcp.ClientSession
	pool []*mcp.ClientSession

	samples   []time.Duration
	seqErrors int
	calls     int64 // saturated: succeeded
	errors    int64 // saturated: failed
	elapsed   time.Duration
	firstErr  error

	abort context.CancelCauseFunc // ends the run when a call hangs
}

func (t *target) noteErr(err error) {
	if t.firstErr == nil {
		t.firstErr = err
	}
}

func (t *target) close() {
	if t.seq != nil {
		_ = t.seq.Close()
	}
	closeAll(t.pool)
	t.seq, t.pool = nil, nil
}

// call makes one call on cs and returns how long it took. It runs on ctx
// itself, not on a per-call context: the SDK reads a reply's SSE stream to
// its end after it returned the result, and cancelling the call then would
// close the connection under it, so that later calls pay for new
// connections. A call that takes longer than callTimeout aborts the run.
func (t *target) call(ctx context.Context, cs *mcp.ClientSession) (time.Duration, error) {
	if t.abort != nil {
		watchdog := time.AfterFunc(callTimeout, func() {
			t.abort(fmt.Errorf("a call on %s (%s) got no answer within %s", t.name, t.url, callTimeout))
		})
		defer watchdog.Stop()
	}
	start := time.Now()
	err := callSum(ctx, cs, t.tool)
	return time.Since(start), err
}

// warmUp makes n unmeasured calls on every target; the first must succeed.
func warmUp(ctx context.Context, targets []*target, n int) error {
	for _, t := range targets {
		for i := range n {
			if _, err := t.call(ctx, t.seq); err != nil {
				if i == 0 || ctx.Err() != nil {
					return fmt.Errorf("first call on %s (%s): %w", t.name, t.url, err)
				}
				t.noteErr(err)
			}
		}
	}
	return nil
}

// sequential makes calls round trips per target on its one session, in
// rounds blocks that the targets take in turns (rotating who goes first),
// so that load that comes and goes hits every path alike.
func sequential(ctx context.Context, targets []*target, calls, rounds int) error {
	for r := range rounds {
		block := calls / rounds
		if r == rounds-1 {
			block = calls - block*(rounds-1)
		}
		for i := range targets {
			t := targets[(r+i)%len(targets)]
			for range block {
				d, err := t.call(ctx, t.seq)
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

// saturate runs every target's pool flat out for total, in slices of at
// most a second that the targets take in turns.
func saturate(ctx context.Context, targets []*target, total time.Duration) error {
	const sliceLen = time.Second
	for s := 0; time.Duration(s)*sliceLen < total; s++ {
		d := min(sliceLen, total-time.Duration(s)*sliceLen)
		for i := range targets {
			targets[(s+i)%len(targets)].burst(ctx, d)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// burst keeps every pool session busy for d.
func (t *target) burst(ctx context.Context, d time.Duration) {
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, cs := range t.pool {
		wg.Go(func() {
			var ok, failed int64
			var first error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := t.call(ctx, cs); err != nil {
					failed++
					if first == nil {
						first = err
					}
				} else {
					ok++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			t.calls += ok
			t.errors += failed
			if first != nil && ctx.Err() == nil {
				t.noteErr(first)
			}
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
}

func (t *target) callsPerS() float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(t.calls) / t.elapsed.Seconds()
}
