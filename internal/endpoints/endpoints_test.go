package endpoints

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	got := Split([]string{"a:1, b:2", "", " c:3 ", ",,"})
	if want := []string{"a:1", "b:2", "c:3"}; !slices.Equal(got, want) {
		t.Fatalf("Split = %q, want %q", got, want)
	}
	if Split(nil) != nil {
		t.Fatal("Split(nil) is not nil")
	}
}
