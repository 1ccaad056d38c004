package latency

import (
	"math"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	if last := Bounds[len(Bounds)-1]; !math.IsInf(last, 1) {
		t.Fatalf("last bucket bound is %v, want +Inf", last)
	}
	for i := 1; i < len(Bounds); i++ {
		if Bounds[i] <= Bounds[i-1] {
			t.Fatalf("Bounds not increasing at %d: %v", i, Bounds)
		}
	}
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{500 * time.Microsecond, 0},
		{501 * time.Microsecond, 1},
		{10 * time.Millisecond, 4},
		{time.Second, 10},
		{30 * time.Second, 14},
		{31 * time.Second, 15},
		{time.Duration(math.MaxInt64), 15},
	}
	for _, tt := range tests {
		if got := Bucket(tt.d); got != tt.want {
			t.Errorf("Bucket(%v) = %d (≤ %v), want %d", tt.d, got, Bounds[got], tt.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name    string
		q       float64
		buckets []uint64
		want    float64
	}{
		{"no calls", 0.5, nil, 0},
		{"all zero", 0.99, []uint64{0, 0, 0}, 0},
		{"first bucket starts at 0", 0.5, []uint64{10}, 0.00025},
		{"bucket end", 0.5, []uint64{0, 0, 0, 0, 100, 100}, 0.01},
		{"interpolated", 0.99, []uint64{0, 0, 0, 0, 100, 100}, 0.01 + 0.015*0.98},
		{"empty buckets skipped", 0.5, []uint64{0, 0, 4, 0, 0, 0, 0, 0, 4}, 0.0025},
		{"+Inf bucket is the last bound", 0.99, append(make([]uint64, 15), 10), 30},
		{"counts beyond the bounds are +Inf", 0.99, append(make([]uint64, 17), 1), 30},
		{"1 s to 2.5 s", 0.5, append(make([]uint64, 11), 2), 1.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(tt.q, tt.buckets); !near(got, tt.want) {
				t.Errorf("Quantile(%v, %v) = %v, want %v", tt.q, tt.buckets, got, tt.want)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
