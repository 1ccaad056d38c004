// Package latency is the latency histogram of the contract between the
// planes: the bounds of MemberReport.latency_buckets (agent.proto), the
// bucket an agent counts an attempt in, and the quantile the control plane
// reads back from the merged counts. Both planes import it, so the bounds
// exist once.
package latency

import (
	"math"
	"time"
)

// Bounds are the upper bounds, in seconds, of MemberReport.latency_buckets
// (LATENCY_BUCKETS_SECONDS in agent.proto): element i of a report counts
// the interval's attempts whose duration d has Bounds[i-1] < d ≤ Bounds[i].
// Buckets are not cumulative, and the last bound is +Inf, so a report has
// len(Bounds) counts. The finite bounds are those of
// mcp_hangar_tool_call_duration_seconds. Do not modify.
var Bounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, math.Inf(1)}

// Bucket returns the index in Bounds of an attempt lasting d.
func Bucket(d time.Duration) int {
	s := d.Seconds()
	for i, le := range Bounds {
		if s <= le {
			return i
		}
	}
	return len(Bounds) - 1 // NaN cannot happen; keep the index valid anyway
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1), in seconds, of the
// latencies counted in buckets (indexed as Bounds), interpolating linearly
// inside the bucket holding it (the first bucket starts at 0), as
// Prometheus' histogram_quantile does. A quantile in the +Inf bucket is the
// last finite bound; counts beyond len(Bounds) count as +Inf. No counts: 0.
func Quantile(q float64, buckets []uint64) float64 {
	var total uint64
	for _, n := range buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	lastFinite := Bounds[len(Bounds)-2]
	var below uint64
	for i, n := range buckets {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if i >= len(Bounds)-1 {
			return lastFinite
		}
		lower := 0.0
		if i > 0 {
			lower = Bounds[i-1]
		}
		return lower + (Bounds[i]-lower)*(rank-float64(below))/float64(n)
	}
	return lastFinite // rounding left rank above the total
}
