package store

import (
	"fmt"
	"testing"
)

func TestConfigHistory(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)
	seed, stored, err := s.SeedConfig(ctx, []byte("a: 1\n"), ConfigMeta{By: "--fleet-config of replica r1", Name: "seed.yaml"})
	if err != nil || !stored {
		t.Fatalf("SeedConfig on an empty store = %d, %v, %v", seed, stored, err)
	}
	if _, stored, _ := s.SeedConfig(ctx, []byte("b: 1\n"), ConfigMeta{}); stored {
		t.Fatalf("SeedConfig stored over an existing config")
	}
	r2, _, err := s.PutConfigBy(ctx, []byte("c: 1\n"), ConfigMeta{By: "the admin token", Name: "c.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	s.PutConfigBy(ctx, []byte("c: 1\n"), ConfigMeta{By: "again"}) // unchanged: no entry
	h, err := s.ConfigHistory(ctx)
	if err != nil || len(h) != 2 {
		t.Fatalf("ConfigHistory = %d entries, %v; want 2", len(h), err)
	}
	if h[0].Rev != r2 || h[0].By != "the admin token" || string(h[0].Data) != "c: 1\n" || h[1].Rev != seed || h[1].Name != "seed.yaml" {
		t.Errorf("history %+v; want c.yaml@%d then seed.yaml@%d", h, r2, seed)
	}
	for i := range HistoryLimit + 3 {
		if _, _, err := s.PutConfigBy(ctx, fmt.Appendf(nil, "n: %d\n", i), ConfigMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := s.ConfigHistory(ctx); len(h) != HistoryLimit || string(h[0].Data) != fmt.Sprintf("n: %d\n", HistoryLimit+2) {
		t.Errorf("after %d more configs: %d entries, newest %q; want %d, the last stored", HistoryLimit+3, len(h), h[0].Data, HistoryLimit)
	}
}
