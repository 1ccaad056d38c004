package router

import (
	"slices"
	"sync"
	"time"
)

// Latency history: the evidence that tells a slow member from an impatient
// caller (docs/design.md §3.4, "timeouts as evidence").
const (
	// latencyWindow is how far back the history looks.
	latencyWindow = time.Minute
	// latencySamples is how many recent answers per tool are kept.
	latencySamples = 128
	// minSamples answers within the window make a history.
	minSamples = 10
	// slowFactor × p99 is the adaptive attempt timeout: an attempt slower
	// than that is a counted timeout.
	slowFactor = 4
	// minAttemptTimeout is the floor of the adaptive attempt timeout.
	minAttemptTimeout = 250 * time.Millisecond
)

// latencies keeps one member's recent answer times per tool. It is safe for
// concurrent use.
type latencies struct {
	mu    sync.Mutex
	tools map[string]*ring
}

// ring holds the last latencySamples answers of one tool.
type ring struct {
	at   [latencySamples]time.Time
	d    [latencySamples]time.Duration
	n    int // samples held
	next int // index of the next write
}

// add records that an attempt of tool answered after d, at now.
func (l *latencies) add(tool string, now time.Time, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tools == nil {
		l.tools = map[string]*ring{}
	}
	r := l.tools[tool]
	if r == nil {
		r = &ring{}
		l.tools[tool] = r
	}
	r.at[r.next], r.d[r.next] = now, d
	r.next = (r.next + 1) % latencySamples
	r.n = min(r.n+1, latencySamples)
}

// p99 returns the 99th percentile of tool's answer times within the last
// minute; ok is false with fewer than minSamples answers (no history).
func (l *latencies) p99(tool string, now time.Time) (p time.Duration, ok bool) {
	l.mu.Lock()
	r := l.tools[tool]
	var ds []time.Duration
	if r != nil {
		ds = make([]time.Duration, 0, r.n)
		for i := range r.n {
			if now.Sub(r.at[i]) <= latencyWindow {
				ds = append(ds, r.d[i])
			}
		}
	}
	l.mu.Unlock()
	if len(ds) < minSamples {
		return 0, false
	}
	slices.Sort(ds)
	return ds[(len(ds)*99+99)/100-1], true
}
