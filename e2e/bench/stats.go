package bench

import (
	"math"
	"slices"
	"time"
)

// latency summarizes a set of round trips, in milliseconds.
type latency struct {
	Count  int     `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// summarize returns the latency summary of samples (zero if there are
// none). Percentiles are nearest-rank. samples is sorted in place.
func summarize(samples []time.Duration) latency {
	if len(samples) == 0 {
		return latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return latency{
		Count:  len(samples),
		P50Ms:  ms(percentile(samples, 50)),
		P99Ms:  ms(percentile(samples, 99)),
		MeanMs: ms(sum / time.Duration(len(samples))),
		MaxMs:  ms(samples[len(samples)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted, which
// must not be empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// ms converts d to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// ratio returns a/b, or nil when b is not positive (a proxy that adds
// nothing measurable makes a ratio meaningless).
func ratio(a, b float64) *float64 {
	if b <= 0 {
		return nil
	}
	r := math.Round(a/b*100) / 100
	return &r
}
