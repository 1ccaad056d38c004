package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// p99Goal is the most a path's p99 under a steady load may be, as a
// multiple of the direct path's.
const p99Goal = 2.0

// pacedReport is the latency of a steady load (o.Rate calls/s on
// o.Workers sessions) on direct, reverse proxy and front door.
type pacedReport struct {
	RatePerS int                 `json:"rate_per_s"`
	Workers  int                 `json:"workers"`
	SecondsS float64             `json:"seconds_per_path"`
	Paths    []pacedPath         `json:"paths"`
	P99Ratio map[string]*float64 `json:"p99_vs_direct"`
}

type pacedPath struct {
	Name    string  `json:"name"`
	Latency latency `json:"latency"`
	Errors  int     `json:"errors"`
}

// measurePaced runs the steady load on each of targets (the first is the
// direct path) for total, in slices of at most a second that the targets
// take in turns.
func measurePaced(ctx context.Context, targets []*target, d *dialer, o Options) (*pacedReport, error) {
	pools := make([][]*mcp.ClientSession, len(targets))
	defer func() {
		for _, p := range pools {
			closeAll(p)
		}
	}()
	for i, t := range targets {
		p, err := d.connectN(ctx, t.url, o.Workers)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		pools[i] = p
	}
	samples := make([][]time.Duration, len(targets))
	errs := make([]int, len(targets))
	const sliceLen = time.Second
	for s := 0; time.Duration(s)*sliceLen < o.Paced; s++ {
		dur := min(sliceLen, o.Paced-time.Duration(s)*sliceLen)
		for k := range targets {
			i := (s + k) % len(targets)
			ok, failed := steady(ctx, targets[i], pools[i], o.Rate, dur)
			samples[i] = append(samples[i], ok...)
			errs[i] += failed
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	rep := &pacedReport{RatePerS: o.Rate, Workers: o.Workers, SecondsS: o.Paced.Seconds(), P99Ratio: map[string]*float64{}}
	for i, t := range targets {
		rep.Paths = append(rep.Paths, pacedPath{Name: t.name, Latency: summarize(samples[i]), Errors: errs[i]})
	}
	direct := rep.Paths[0].Latency.P99Ms
	for _, p := range rep.Paths[1:] {
		rep.P99Ratio[p.Name] = ratio(p.Latency.P99Ms, direct)
	}
	return rep, nil
}

// steady sends rate calls/s of t's call on sessions for d and returns the
// round trips of the calls that succeeded and the count of those that failed.
func steady(ctx context.Context, t *target, sessions []*mcp.ClientSession, rate int, d time.Duration) ([]time.Duration, int) {
	loadCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	jobs := make(chan struct{})
	var mu sync.Mutex
	var ok []time.Duration
	failed := 0
	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Go(func() {
			for range jobs {
				took, err := t.timed(ctx, cs)
				mu.Lock()
				if err != nil {
					failed++
					t.noteErr(err)
				} else {
					ok = append(ok, took)
				}
				mu.Unlock()
			}
		})
	}
	pace(loadCtx, jobs, rate)
	close(jobs)
	wg.Wait()
	return ok, failed
}

func (p *pacedReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nsteady load: %d calls/s of add on %d sessions, %gs per path (interleaved)\n", p.RatePerS, p.Workers, p.SecondsS)
	for _, path := range p.Paths {
		l := path.Latency
		fmt.Fprintf(w, "  %-14s p50 %.3f ms  p99 %.3f ms  max %.1f ms  calls %d  errors %d", path.Name, l.P50Ms, l.P99Ms, l.MaxMs, l.Count, path.Errors)
		if r, ok := p.P99Ratio[path.Name]; ok {
			fmt.Fprintf(w, "  p99 / direct %s (goal <= %.1f: %s)", fmtRatio(r), p99Goal, verdictMax(r, p99Goal))
		}
		fmt.Fprintln(w)
	}
}
