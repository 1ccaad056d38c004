package bench

import (
	"context"
	"time"
)

// What the peers benchmark (e2e/peers) shares with hangar-bench, so that
// both measure and report alike.

// Latency summarizes a set of round trips, in milliseconds.
type Latency = latency

// Summarize returns the nearest-rank latency summary of samples, which it
// sorts in place.
func Summarize(samples []time.Duration) Latency { return summarize(samples) }

// Memory is a process' resident set size, in KiB.
type Memory = memory

// ReadMemory reads the resident set size of process pid from /proc.
func ReadMemory(pid int) (Memory, error) { return readMemory(pid) }

// LoadAverage returns the 1-minute load average, or -1 if it is unknown.
func LoadAverage() float64 { return loadAverage() }

// Pace sends a token on jobs rate times a second until ctx ends, catching
// up by at most 100 ms worth of tokens after a stall.
func Pace(ctx context.Context, jobs chan<- struct{}, rate int) { pace(ctx, jobs, rate) }
