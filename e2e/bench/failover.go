package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

// failoverReport is what a steady load saw while the primary was killed.
type failoverReport struct {
	RatePerS      int     `json:"rate_per_s"` // asked for
	Workers       int     `json:"workers"`
	BeforeS       float64 `json:"before_kill_s"`
	AfterS        float64 `json:"after_kill_s"`
	Sent          int     `json:"sent"`
	Failed        int     `json:"failed"`
	FailedGoal    int     `json:"failed_goal"`
	AchievedPerS  float64 `json:"achieved_per_s"`
	SentAfterKill int     `json:"sent_after_kill"`
	// FailedAfterKill counts failed calls sent after the kill.
	FailedAfterKill int `json:"failed_after_kill"`
	// Served counts the "add" calls each member served, from its own
	// counters: before the kill (since the run began) and after it.
	ServedBeforeKill map[string]int64 `json:"served_before_kill"`
	ServedAfterKill  map[string]int64 `json:"served_after_kill"`
	// LatencyAfterKill summarizes the calls sent after the kill that succeeded.
	LatencyAfterKill latency `json:"latency_after_kill"`
	FirstError       string  `json:"first_error,omitempty"`
}

// sentCall is one call of the failover run.
type sentCall struct {
	start time.Time
	took  time.Duration
	err   error
}

// runFailover sends o.Rate calls/s of "add" through the agent's front door
// on o.Workers sessions, kills the primary with SIGKILL after o.Before and
// goes on for o.After.
func runFailover(ctx context.Context, f *fleet, d *dialer, o Options) (failoverReport, error) {
	rep := failoverReport{RatePerS: o.Rate, Workers: o.Workers, BeforeS: o.Before.Seconds(), AfterS: o.After.Seconds()}
	sessions, err := d.connectN(ctx, f.agentURL(), o.Workers)
	if err != nil {
		return rep, err
	}
	defer closeAll(sessions)
	primary0, err := servedAdd(ctx, f.primaryAdmin)
	if err != nil {
		return rep, err
	}
	backup0, err := servedAdd(ctx, f.backupAdmin)
	if err != nil {
		return rep, err
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	jobs := make(chan struct{})
	perWorker := make([][]sentCall, len(sessions))
	var wg sync.WaitGroup
	for i, cs := range sessions {
		wg.Go(func() {
			for range jobs {
				cctx, cancel := context.WithTimeout(ctx, callTimeout) // not loadCtx: let the last calls finish
				start := time.Now()
				err := callAdd(cctx, cs)
				perWorker[i] = append(perWorker[i], sentCall{start: start, took: time.Since(start), err: err})
				cancel()
			}
		})
	}
	started := time.Now()
	wg.Go(func() {
		defer close(jobs)
		pace(loadCtx, jobs, o.Rate)
	})

	sleep(ctx, o.Before)
	primaryKill, errP := servedAdd(ctx, f.primaryAdmin)
	backupKill, errB := servedAdd(ctx, f.backupAdmin)
	f.primary.Kill()
	killed := time.Now()
	sleep(ctx, o.After)
	stopLoad()
	wg.Wait()
	elapsed := time.Since(started)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if errP != nil || errB != nil {
		return rep, fmt.Errorf("served counts at the kill: %w", firstErr(errP, errB))
	}
	backupEnd, err := servedAdd(ctx, f.backupAdmin)
	if err != nil {
		return rep, err
	}
	rep.ServedBeforeKill = map[string]int64{primaryID: primaryKill - primary0, backupID: backupKill - backup0}
	rep.ServedAfterKill = map[string]int64{primaryID: 0, backupID: backupEnd - backupKill} // the primary is dead
	rep.tally(perWorker, killed, elapsed)
	return rep, nil
}

func (rep *failoverReport) tally(perWorker [][]sentCall, killed time.Time, elapsed time.Duration) {
	var after []time.Duration
	for _, calls := range perWorker {
		for _, c := range calls {
			rep.Sent++
			isAfter := !c.start.Before(killed)
			if isAfter {
				rep.SentAfterKill++
			}
			if c.err != nil {
				rep.Failed++
				if isAfter {
					rep.FailedAfterKill++
				}
				if rep.FirstError == "" {
					rep.FirstError = c.err.Error()
				}
				continue
			}
			if isAfter {
				after = append(after, c.took)
			}
		}
	}
	rep.AchievedPerS = math.Round(float64(rep.Sent)/elapsed.Seconds()*10) / 10
	rep.LatencyAfterKill = summarize(after)
}

// pace sends a token on jobs rate times a second until ctx ends. When the
// workers fall behind it catches up by at most 100 ms worth of calls, so a
// stall is not followed by a burst that hides it.
func pace(ctx context.Context, jobs chan<- struct{}, rate int) {
	const maxLag = 100 * time.Millisecond
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			return
		}
		next = next.Add(interval)
		if lag := time.Since(next); lag > maxLag {
			next = time.Now().Add(-maxLag)
		}
		timer.Reset(time.Until(next))
	}
}

// servedAdd returns how many "add" calls an mcp-math has served.
func servedAdd(ctx context.Context, admin *mathserver.AdminClient) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := admin.Stats(ctx)
	if err != nil {
		return 0, fmt.Errorf("served counts: %w", err)
	}
	return st.Calls["add"], nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
