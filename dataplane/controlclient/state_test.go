package controlclient

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestLoadStateMissing(t *testing.T) {
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "does-not-exist"), t.TempDir()} {
		s, err := LoadState(dir)
		if s != nil || err != nil {
			t.Errorf("LoadState(%q) = %v, %v; want nil, nil", dir, s, err)
		}
	}
}

func TestSaveLoadState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created on first save
	for _, v := range []uint64{5, 6} {
		want := snapshot(v, "n").GetSnapshot()
		if err := saveState(dir, want); err != nil {
			t.Fatalf("saveState: %v", err)
		}
		got, err := LoadState(dir)
		if err != nil {
			t.Fatalf("LoadState: %v", err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("LoadState (-want +got):\n%s", diff)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != StateFile {
		t.Errorf("state dir holds %v, want only %s (no temporary files)", entries, StateFile)
	}
	if info, err := os.Stat(filepath.Join(dir, StateFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v; want 0600", info.Mode(), err)
	}
}

func TestLoadStateCorrupt(t *testing.T) {
	tests := []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"flipped payload byte", func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }, "checksum mismatch"},
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-5] }, "truncated: header says"},
		{"truncated header", func(b []byte) []byte { return b[:20] }, "truncated inside the header"},
		{"empty file", func([]byte) []byte { return nil }, "truncated inside the header"},
		{"trailing bytes", func(b []byte) []byte { return append(b, "xx"...) }, "2 bytes after"},
		{"not a state file", func([]byte) []byte { return []byte("mcp_servers:\n  a: {}\n") }, "does not start with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveState(dir, snapshot(5, "n").GetSnapshot()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, StateFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := LoadState(dir)
			if s != nil || !errors.Is(err, ErrCorruptState) {
				t.Fatalf("LoadState = %v, %v; want an error wrapping ErrCorruptState", s, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file and %q", msg, tt.want)
			}
		})
	}
}
