package controlclient

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func TestLoadStateMissing(t *testing.T) {
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "does-not-exist"), t.TempDir()} {
		s, err := LoadState(dir, nil)
		if s != nil || err != nil {
			t.Errorf("LoadState(%q) = %v, %v; want nil, nil", dir, s, err)
		}
	}
}

func versions(ss []*hangarv1.Snapshot) []uint64 {
	var out []uint64
	for _, s := range ss {
		out = append(out, s.GetVersion())
	}
	return out
}

func TestSaveLoadState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created on first save
	steps := []struct {
		save uint64
		want []uint64 // newest first
	}{
		{5, []uint64{5}},
		{6, []uint64{6, 5}},
		{6, []uint64{6, 5}}, // the same version again does not push out 5
		{7, []uint64{7, 6}}, // only the last two are kept
	}
	for _, st := range steps {
		want := snapshot(st.save, "n").GetSnapshot()
		if err := saveState(dir, want); err != nil {
			t.Fatalf("saveState: %v", err)
		}
		got, err := LoadState(dir, nil)
		if err != nil {
			t.Fatalf("LoadState: %v", err)
		}
		if diff := cmp.Diff(st.want, versions(got)); diff != "" {
			t.Fatalf("after saving %d, versions (-want +got):\n%s", st.save, diff)
		}
		if diff := cmp.Diff(want, got[0], protocmp.Transform()); diff != "" {
			t.Errorf("LoadState (-want +got):\n%s", diff)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode: %v, %v; want 0600", e.Name(), info.Mode(), err)
		}
	}
	if diff := cmp.Diff([]string{StateFile, PrevStateFile}, names); diff != "" {
		t.Errorf("state dir holds (-want +got):\n%s", diff)
	}
}

var damages = []struct {
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

func damage(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadStateCorrupt(t *testing.T) {
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveState(dir, snapshot(5, "n").GetSnapshot()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, StateFile)
			damage(t, path, tt.damage)
			s, err := LoadState(dir, nil)
			if s != nil || !errors.Is(err, ErrCorruptState) {
				t.Fatalf("LoadState = %v, %v; want an error wrapping ErrCorruptState", s, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file and %q", msg, tt.want)
			}
		})
	}
}

// A damaged last snapshot falls back to the previous one, with a warning
// naming the file; a damaged previous one leaves the last one in force.
func TestLoadStateFallback(t *testing.T) {
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, v := range []uint64{5, 6} {
				if err := saveState(dir, snapshot(v, "n").GetSnapshot()); err != nil {
					t.Fatal(err)
				}
			}
			damage(t, filepath.Join(dir, StateFile), tt.damage)
			var logs bytes.Buffer
			got, err := LoadState(dir, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil || !cmp.Equal(versions(got), []uint64{5}) {
				t.Fatalf("LoadState = %v, %v; want the previous snapshot, 5", versions(got), err)
			}
			if l := logs.String(); !strings.Contains(l, "state_file_unusable") || !strings.Contains(l, StateFile) || !strings.Contains(l, tt.want) {
				t.Errorf("warning %q does not name %s and %q", l, StateFile, tt.want)
			}
			// The next save replaces the damaged file and keeps 5.
			if err := saveState(dir, snapshot(7, "n").GetSnapshot()); err != nil {
				t.Fatal(err)
			}
			if got, err := LoadState(dir, nil); err != nil || !cmp.Equal(versions(got), []uint64{7, 5}) {
				t.Errorf("after saving 7: %v, %v; want [7 5]", versions(got), err)
			}
		})
	}
	t.Run("previous damaged", func(t *testing.T) {
		dir := t.TempDir()
		for _, v := range []uint64{5, 6} {
			if err := saveState(dir, snapshot(v, "n").GetSnapshot()); err != nil {
				t.Fatal(err)
			}
		}
		damage(t, filepath.Join(dir, PrevStateFile), func(b []byte) []byte { return b[:len(b)/2] })
		if got, err := LoadState(dir, nil); err != nil || !cmp.Equal(versions(got), []uint64{6}) {
			t.Errorf("LoadState = %v, %v; want [6]", versions(got), err)
		}
	})
	t.Run("both damaged", func(t *testing.T) {
		dir := t.TempDir()
		for _, v := range []uint64{5, 6} {
			if err := saveState(dir, snapshot(v, "n").GetSnapshot()); err != nil {
				t.Fatal(err)
			}
		}
		damage(t, filepath.Join(dir, StateFile), func(b []byte) []byte { return b[:10] })
		damage(t, filepath.Join(dir, PrevStateFile), func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
		got, err := LoadState(dir, nil)
		if got != nil || !errors.Is(err, ErrCorruptState) {
			t.Fatalf("LoadState = %v, %v; want ErrCorruptState", versions(got), err)
		}
		for _, w := range []string{StateFile, PrevStateFile, "truncated", "checksum mismatch", "delete the files"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	})
}
