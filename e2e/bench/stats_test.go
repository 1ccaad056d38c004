package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		want    latency
	}{
		{name: "empty", want: latency{}},
		{name: "one", samples: []time.Duration{2 * time.Millisecond},
			want: latency{Count: 1, P50Ms: 2, P99Ms: 2, MeanMs: 2, MaxMs: 2}},
		{name: "unsorted", samples: []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond},
			want: latency{Count: 4, P50Ms: 2, P99Ms: 4, MeanMs: 2.5, MaxMs: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.samples); got != tt.want {
				t.Errorf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPercentileOfHundred(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
}

func TestRatio(t *testing.T) {
	if r := ratio(1, 0); r != nil {
		t.Errorf("ratio(1, 0) = %v, want nil", *r)
	}
	if r := ratio(3, 2); r == nil || *r != 1.5 {
		t.Errorf("ratio(3, 2) = %v, want 1.5", r)
	}
}
