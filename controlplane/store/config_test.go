package store

import (
	"testing"
)

func TestPutConfigOnlyIfChanged(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxFor(t)

	if yaml, rev, err := s.Config(ctx); err != nil || yaml != nil || rev != 0 {
		t.Fatalf("Config() on empty store = %q, %d, %v; want nil, 0, nil", yaml, rev, err)
	}
	a, b := []byte("mcp_servers: {a: {}}\n"), []byte("mcp_servers: {b: {}}\n")

	r1, changed, err := s.PutConfig(ctx, a)
	if err != nil || !changed || r1 == 0 {
		t.Fatalf("first PutConfig = %d, %v, %v; want a revision, changed", r1, changed, err)
	}
	r, changed, err := s.PutConfig(ctx, a)
	if err != nil || changed || r != r1 {
		t.Fatalf("same PutConfig = %d, %v, %v; want %d, unchanged", r, changed, err, r1)
	}
	r2, changed, err := s.PutConfig(ctx, b)
	if err != nil || !changed || r2 <= r1 {
		t.Fatalf("new PutConfig = %d, %v, %v; want a revision > %d, changed", r2, changed, err, r1)
	}
	yaml, rev, err := s.Config(ctx)
	if err != nil || string(yaml) != string(b) || rev != r2 {
		t.Fatalf("Config() = %q, %d, %v; want %q, %d", yaml, rev, err, b, r2)
	}

	w := watch(t, s.WatchConfig)
	if v := recv(t, w); string(v.Data) != string(b) || v.Rev != r2 {
		t.Fatalf("first WatchConfig value = %q@%d, want %q@%d", v.Data, v.Rev, b, r2)
	}
	s.PutConfig(ctx, b) // unchanged: no value
	r3, _, err := s.PutConfig(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if v := recv(t, w); string(v.Data) != string(a) || v.Rev != r3 {
		t.Fatalf("next WatchConfig value = %q@%d, want %q@%d", v.Data, v.Rev, a, r3)
	}
}
