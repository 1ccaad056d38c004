package router

import "testing"

func TestBudget(t *testing.T) {
	b := newBudget()
	spent := 0
	for b.retry() {
		spent++
	}
	if spent != 100 {
		t.Fatalf("a fresh budget allowed %d retries, want its reserve of 100", spent)
	}
	// Empty, it earns one retry per five calls.
	for range 50 {
		b.call()
	}
	got := 0
	for b.retry() {
		got++
	}
	if got != 10 {
		t.Fatalf("after 50 calls on an empty budget: %d retries, want 10 (20 %%)", got)
	}
}
