package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// freezeBudget is each call's budget (hangar_call's per-call timeout) in the
// freeze runs: an AI agent's patience for one tool call.
const freezeBudget = 2 * time.Second

// freezeReport is what a steady load saw while the primary was frozen
// (SIGSTOP): unlike a killed one it accepts connections and never answers.
type freezeReport struct {
	Tool     string  `json:"tool"`
	Repeat   bool    `json:"safe_to_repeat"`
	RatePerS int     `json:"rate_per_s"`
	BudgetS  float64 `json:"budget_s"`
	BeforeS  float64 `json:"before_freeze_s"`
	AfterS   float64 `json:"after_freeze_s"`
	Sent     int     `json:"sent"`
	Failed   int     `json:"failed"`
	// SentAfter and FailedAfter count the calls sent after the freeze.
	SentAfter   int `json:"sent_after_freeze"`
	FailedAfter int `json:"failed_after_freeze"`
	// BackupServesS is the time from the freeze to the end of the first
	// call the backup answered.
	BackupServesS float64 `json:"backup_serves_after_s"`
	// LatencyAfter summarizes every call sent after the freeze (failed
	// ones at the time they failed).
	LatencyAfter latency `json:"latency_after_freeze"`
	FirstError   string  `json:"first_error,omitempty"`
}

type freezeCall struct {
	start, end time.Time
	member     string
	err        error
}

// runFreeze starts a fleet of its own, sends o.Rate calls/s of tool through
// hangar_call (each with freezeBudget) without waiting for answers, freezes
// the primary after o.Before and goes on for o.After.
func runFreeze(ctx context.Context, o Options, echo io.Writer, tool string, repeat bool) (freezeReport, error) {
	rep := freezeReport{Tool: tool, Repeat: repeat, RatePerS: o.Rate, BudgetS: freezeBudget.Seconds(),
		BeforeS: o.Before.Seconds(), AfterS: o.After.Seconds()}
	f, err := startFleet(o, echo)
	if err != nil {
		return rep, err
	}
	defer f.stop()
	defer func() { _ = f.primary.Thaw() }() // so that stop can end it
	d := newDialer(o.Workers + 8)
	defer d.close()
	sessions, err := d.connectN(ctx, f.agentURL(), o.Workers)
	if err != nil {
		return rep, err
	}
	defer closeAll(sessions)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var (
		mu    sync.Mutex
		calls []freezeCall
		wg    sync.WaitGroup
	)
	jobs := make(chan struct{})
	wg.Go(func() {
		defer close(jobs)
		pace(loadCtx, jobs, o.Rate)
	})
	wg.Go(func() {
		i := 0
		for range jobs {
			cs, n := sessions[i%len(sessions)], i
			i++
			wg.Go(func() {
				c := callOnce(ctx, cs, tool, n)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			})
		}
	})
	sleep(ctx, o.Before)
	if err := f.primary.Freeze(); err != nil {
		return rep, fmt.Errorf("freeze %s: %w", primaryID, err)
	}
	frozen := time.Now()
	sleep(ctx, o.After)
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	rep.tally(calls, frozen)
	return rep, nil
}

// callOnce sends one call of tool on the group through hangar_call.
func callOnce(ctx context.Context, cs *mcp.ClientSession, tool string, i int) freezeCall {
	args := map[string]any{"a": i, "b": 1}
	if tool == "append" {
		args = map[string]any{"text": fmt.Sprint(i)}
	}
	c := freezeCall{start: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "hangar_call", Arguments: map[string]any{"calls": []map[string]any{
		{"mcp_server": groupID, "tool": tool, "arguments": args, "timeout": freezeBudget.Seconds()}}}})
	c.end = time.Now()
	if err != nil {
		c.err = err
		return c
	}
	var batch struct {
		Results []struct {
			Success bool    `json:"success"`
			Error   *string `json:"error"`
			Member  string  `json:"mcp_server_used"`
		} `json:"results"`
	}
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &batch); err != nil || len(batch.Results) != 1 {
		c.err = fmt.Errorf("hangar_call answered %s", data)
		return c
	}
	r := batch.Results[0]
	c.member = r.Member
	if !r.Success {
		msg := "failed"
		if r.Error != nil {
			msg = *r.Error
		}
		c.err = fmt.Errorf("%s", msg)
	}
	return c
}

func (rep *freezeReport) tally(calls []freezeCall, frozen time.Time) {
	var after []time.Duration
	var first time.Time
	for _, c := range calls {
		rep.Sent++
		isAfter := !c.start.Before(frozen)
		if c.err != nil {
			rep.Failed++
			if rep.FirstError == "" {
				rep.FirstError = c.err.Error()
			}
		}
		if !isAfter {
			continue
		}
		rep.SentAfter++
		after = append(after, c.end.Sub(c.start))
		if c.err != nil {
			rep.FailedAfter++
		}
	}
	for _, c := range calls {
		if c.err == nil && c.member == backupID && c.end.After(frozen) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	if !first.IsZero() {
		rep.BackupServesS = first.Sub(frozen).Seconds()
	}
	rep.LatencyAfter = summarize(after)
}

// printFreeze prints one freeze run.
func printFreeze(w io.Writer, f *freezeReport) {
	kind := "read-only"
	if !f.Repeat {
		kind = "not safe to repeat"
	}
	fmt.Fprintf(w, "\nfreeze: %d calls/s of %s (%s) through hangar_call, %gs budget each; SIGSTOP %s after %gs, then %gs more\n",
		f.RatePerS, f.Tool, kind, f.BudgetS, primaryID, f.BeforeS, f.AfterS)
	fmt.Fprintf(w, "  sent %d, failed %d; after the freeze: sent %d, failed %d; first call served by the backup %.3f s after the freeze\n",
		f.Sent, f.Failed, f.SentAfter, f.FailedAfter, f.BackupServesS)
	l := f.LatencyAfter
	fmt.Fprintf(w, "  latency of calls sent after the freeze: p50 %.3f ms, p99 %.3f ms, max %.1f ms\n", l.P50Ms, l.P99Ms, l.MaxMs)
	if f.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", f.FirstError)
	}
}
