package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// callTimeout bounds every call the demo makes to the agent.
const callTimeout = 10 * time.Second

// phase is a part of the demo that the summary counts separately.
type phase int

const (
	beforeKill phase = iota
	primaryDown
	afterRestart
	numPhases
)

var phaseNames = [numPhases]string{"before kill", "primary down", "after restart"}

// counts are the calls of one phase, as the client saw them.
type counts struct {
	sent, ok, failed int
	retried          int            // successful calls the agent moved to another member
	served           map[string]int // successful calls by the member that served them
}

// call is one call the client sent, kept to check afterwards which calls
// the agent sent to the primary and when.
type call struct {
	sent     time.Time
	done     bool // answered or failed (not interrupted)
	failed   bool
	member   string // the member that served it ("" if it failed)
	attempts int    // members the agent tried
}

// triedPrimary reports whether the agent sent the call to the primary:
// the primary served it, or the agent moved it to the backup after trying
// the primary first (the group has two members, priority order). A failed
// call fails the demo anyway.
func (c call) triedPrimary() bool {
	return c.done && !c.failed && (c.member == primaryName || c.attempts > 1)
}

// traffic sends add calls to the group through one agent at a steady rate
// and counts them by phase and serving member. Its methods are safe for
// concurrent use.
type traffic struct {
	label string // "agent A"
	cs    *mcp.ClientSession
	rate  int
	out   *console
	base  int // first value added: the agents' calls differ

	// gate is held shared by every call in flight and exclusively by
	// between, so a phase change never splits a call.
	gate sync.RWMutex

	mu        sync.Mutex
	phase     phase
	byPhase   [numPhases]counts
	calls     []call
	failures  []string // the first few failure messages
	wg        sync.WaitGroup
	nextValue int
}

// maxShownFailures caps the failed calls printed as they happen.
const maxShownFailures = 5

func newTraffic(label string, cs *mcp.ClientSession, rate, base int, out *console) *traffic {
	t := &traffic{label: label, cs: cs, rate: rate, base: base, out: out}
	for i := range t.byPhase {
		t.byPhase[i].served = map[string]int{}
	}
	return t
}

// run sends calls until ctx ends, then waits for the calls in flight. The
// calls themselves stop only when parent ends (Ctrl-C), so stopping the
// traffic lets the last calls finish.
func (t *traffic) run(ctx, parent context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(t.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.wg.Wait()
			return
		case <-tick.C:
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				t.one(parent)
			}()
		}
	}
}

// one sends one call and records its outcome in the phase it was sent in.
func (t *traffic) one(ctx context.Context) {
	t.gate.RLock()
	defer t.gate.RUnlock()
	t.mu.Lock()
	p := t.phase
	t.byPhase[p].sent++
	t.nextValue++
	a := t.base + t.nextValue
	i := len(t.calls)
	t.calls = append(t.calls, call{sent: time.Now()})
	t.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	member, attempts, err := addThroughGroup(cctx, t.cs, a, 1)
	cancel()

	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil {
		t.byPhase[p].sent-- // interrupted: neither ok nor failed
		return
	}
	t.calls[i] = call{sent: t.calls[i].sent, done: true, failed: err != nil, member: member, attempts: attempts}
	switch {
	case err != nil:
		t.byPhase[p].failed++
		if len(t.failures) < maxShownFailures {
			msg := fmt.Sprintf("%s: call %d (%s) FAILED: %v", t.label, a, phaseNames[p], err)
			t.failures = append(t.failures, msg)
			t.out.say("!! %s", msg)
		}
	default:
		t.byPhase[p].ok++
		if attempts > 1 {
			t.byPhase[p].retried++
		}
		t.byPhase[p].served[member]++
	}
}

// between stops new calls, waits for the calls in flight, runs fn and
// moves to phase next before calls resume: both the client's counts and
// the upstreams' own counts then split at the same call.
func (t *traffic) between(next phase, fn func() error) error {
	t.gate.Lock()
	defer t.gate.Unlock()
	err := fn()
	t.mu.Lock()
	t.phase = next
	t.mu.Unlock()
	return err
}

// totals returns the counts of every phase added up.
func (t *traffic) totals() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum := counts{served: map[string]int{}}
	for _, c := range t.byPhase {
		sum.sent += c.sent
		sum.ok += c.ok
		sum.failed += c.failed
		sum.retried += c.retried
		for m, n := range c.served {
			sum.served[m] += n
		}
	}
	return sum
}

// served returns how many calls member served in phase p.
func (t *traffic) served(p phase, member string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPhase[p].served[member]
}

// phaseCounts returns a copy of the counts of phase p.
func (t *traffic) phaseCounts(p phase) counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byPhase[p]
	c.served = map[string]int{}
	for m, n := range t.byPhase[p].served {
		c.served[m] = n
	}
	return c
}

// triedPrimary returns how many calls sent in [from, to) the agent sent
// to the primary, and how many calls were sent then in all.
func (t *traffic) triedPrimary(from, to time.Time) (tried, sent int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.calls {
		if !c.done || c.sent.Before(from) || !c.sent.Before(to) {
			continue
		}
		sent++
		if c.triedPrimary() {
			tried++
		}
	}
	return tried, sent
}

// servedSince returns how many calls sent at or after from member served.
func (t *traffic) servedSince(from time.Time, member string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.calls {
		if c.done && !c.failed && c.member == member && !c.sent.Before(from) {
			n++
		}
	}
	return n
}

// line renders the running totals for the once-a-second report.
func (t *traffic) line() string {
	c := t.totals()
	return fmt.Sprintf("%s  sent=%-4d ok=%-4d failed=%d  served_by: %s=%d %s=%d", t.label,
		c.sent, c.ok, c.failed, primaryName, c.served[primaryName], backupName, c.served[backupName])
}
