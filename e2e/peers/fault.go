package peers

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/hangarmesh/hangar/e2e/bench"
)

// Faults the paced load meets.
const (
	faultKill   = "kill"   // SIGKILL
	faultFreeze = "freeze" // SIGSTOP: accepts connections, never answers
	faultNone   = "none"   // the same load and nothing else: can the machine carry it?
)

// faultReport is what a paced load saw when the primary was killed or
// frozen.
type faultReport struct {
	Fault string `json:"fault"`
	Sent  int    `json:"sent"`
	// Failed counts the calls that failed or got no answer within the
	// budget, SentAfter and FailedAfter those sent after the fault.
	Failed       int           `json:"failed"`
	SentAfter    int           `json:"sent_after_fault"`
	FailedAfter  int           `json:"failed_after_fault"`
	LatencyAfter bench.Latency `json:"latency_after_fault"` // failed calls at the time they failed
	// FailedAfterBySession splits FailedAfter by the session that carried
	// the call (a failover that leaves some client sessions behind shows).
	FailedAfterBySession []int  `json:"failed_after_by_session"`
	FirstError           string `json:"first_error,omitempty"`
}

// sent is one call of the paced load.
type sent struct {
	start, end time.Time
	session    int
	err        error
}

// loadSettings are the paced load's.
type loadSettings struct {
	rate, sessions int
	budget         time.Duration
	before, after  time.Duration
}

// loadTarget is where the paced load goes.
type loadTarget struct {
	url  string
	tr   transport
	tool string
	// primary returns the processes that the fault hits.
	primary func() []int
}

// runFault sends ls.rate calls/s to lt on ls.sessions sessions, each call
// in its own goroutine with ls.budget, whatever the calls in flight do (as
// independent AI agents would); after ls.before it kills or freezes lt's
// primary (or, for faultNone, does nothing) and goes on for ls.after. A
// session whose call failed with an answer is opened again for its next
// call.
func runFault(ctx context.Context, lt loadTarget, fault string, ls loadSettings) (faultReport, error) {
	rep := faultReport{Fault: fault}
	c := newClient(ls.sessions + 8)
	defer c.close()
	slots := make([]*slot, ls.sessions)
	for i := range slots {
		slots[i] = &slot{c: c, endpoint: lt.url, tr: lt.tr, ctx: ctx}
		if _, err := slots[i].get(ctx, connectTimeout); err != nil {
			return rep, err
		}
	}
	defer func() {
		for _, s := range slots {
			s.close()
		}
	}()

	var (
		mu    sync.Mutex
		calls []sent
		wg    sync.WaitGroup
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	jobs := make(chan struct{})
	wg.Go(func() {
		defer close(jobs)
		bench.Pace(loadCtx, jobs, ls.rate)
	})
	wg.Go(func() {
		i := 0
		for range jobs {
			n := i % len(slots)
			i++
			wg.Go(func() {
				c := callOnce(ctx, slots[n], lt.tool, ls.budget)
				c.session = n
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			})
		}
	})
	sleepCtx(ctx, ls.before)
	var faultErr error
	switch fault {
	case faultKill:
		faultErr = signalAll(lt.primary(), syscall.SIGKILL)
	case faultFreeze:
		faultErr = signalAll(lt.primary(), syscall.SIGSTOP)
	}
	at := time.Now()
	if faultErr == nil {
		sleepCtx(ctx, ls.after)
	}
	stopLoad()
	wg.Wait()
	if faultErr != nil {
		return rep, fmt.Errorf("%s the primary: %w", fault, faultErr)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	rep.tally(calls, at, ls.sessions)
	return rep, nil
}

// callOnce makes one call on s within budget, and drops the session when
// the call failed with an answer (a lost session, a refused connection, an
// error from the proxy): a call that only ran out of budget leaves the
// session as it is, as a client would not re-initialize on a slow call.
func callOnce(ctx context.Context, s *slot, tool string, budget time.Duration) sent {
	c := sent{start: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	cs, err := s.get(cctx, budget)
	if err == nil {
		if err = callSum(cctx, cs, tool); err != nil && cctx.Err() == nil {
			s.drop(cs)
		}
	}
	c.end, c.err = time.Now(), err
	return c
}

// tally counts calls; those that started at or after at were sent after
// the fault.
func (rep *faultReport) tally(calls []sent, at time.Time, sessions int) {
	var after []time.Duration
	rep.FailedAfterBySession = make([]int, sessions)
	for _, c := range calls {
		rep.Sent++
		if c.err != nil {
			rep.Failed++
			if rep.FirstError == "" {
				rep.FirstError = c.err.Error()
			}
		}
		if c.start.Before(at) {
			continue
		}
		rep.SentAfter++
		after = append(after, c.end.Sub(c.start))
		if c.err != nil {
			rep.FailedAfter++
			rep.FailedAfterBySession[c.session]++
		}
	}
	rep.LatencyAfter = bench.Summarize(after)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
