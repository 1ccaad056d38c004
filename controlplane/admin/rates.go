package admin

import "math"

// latencyBounds are the upper bounds, in seconds, of the agents' latency
// buckets (MemberReport.latency_buckets in agent.proto: 0.5 ms … 30 s, then
// +Inf; buckets are not cumulative). They are the data plane's
// controlclient.LatencyBuckets, copied: the planes meet only at the contract.
var latencyBounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, math.Inf(1)}

// Outcome classes (docs/design.md §3.3) that make up the ok and error rates.
var (
	okClasses    = []string{"ok"}
	errorClasses = []string{"connect_error", "timeout", "transport_error", "server_error"}
)

// minute is a member's calls over the last minute, merged over agents.
type minute struct {
	byClass map[string]uint64 // attempts by outcome class
	buckets []uint64          // attempts by latency bucket (latencyBounds)
}

// rates returns the ok and error calls per second.
func (m minute) rates() (ok, errs float64) {
	return m.perSecond(okClasses), m.perSecond(errorClasses)
}

func (m minute) perSecond(classes []string) float64 {
	var n uint64
	for _, c := range classes {
		n += m.byClass[c]
	}
	return float64(n) / rateWindow.Seconds()
}

// quantile estimates the q-quantile (0 ≤ q ≤ 1) of the latencies counted
// in buckets, interpolating linearly inside the bucket holding it (the
// first bucket starts at 0). A quantile in the +Inf bucket is the last
// finite bound; counts beyond len(latencyBounds) count as +Inf. No counts:
// 0.
func quantile(q float64, buckets []uint64) float64 {
	var total uint64
	for _, n := range buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	lastFinite := latencyBounds[len(latencyBounds)-2]
	var below uint64
	for i, n := range buckets {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if i >= len(latencyBounds)-1 {
			return lastFinite
		}
		lower := 0.0
		if i > 0 {
			lower = latencyBounds[i-1]
		}
		return lower + (latencyBounds[i]-lower)*(rank-float64(below))/float64(n)
	}
	return lastFinite // rounding left rank above the total
}
