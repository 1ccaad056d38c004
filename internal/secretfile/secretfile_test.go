package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestRuleFirstLineTrimmed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tok")
	write(t, p, "  0123456789abcdef \nsecond line\n", time.Unix(1000, 0))
	f, err := Open("--auth-token-file", p, 16)
	if err != nil || f.Get() != "0123456789abcdef" {
		t.Fatalf("Open = %v, %v; want the first line trimmed", f, err)
	}
	for content, want := range map[string]string{"\nsecret-on-line-2\n": "first line is empty", "short\n": "at least 16 characters"} {
		write(t, p, content, time.Unix(1000, 0))
		if _, err := Open("--auth-token-file", p, 16); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--auth-token-file") {
			t.Errorf("Open(%q) = %v, want an error naming the flag and %q", content, err, want)
		}
	}
	if _, err := Open("--auth-token-file", filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

func TestGetFollowsTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	write(t, p, "old-token-0123456789\n", time.Unix(1000, 0))
	f, err := Open("--token-file", p, 16)
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, "new-token-0123456789\n", time.Unix(2000, 0))
	if got := f.Get(); got != "new-token-0123456789" {
		t.Errorf("after rotation Get = %q, want the new token", got)
	}
	// A half-written (empty) file keeps the last good token and says why.
	write(t, p, "", time.Unix(3000, 0))
	if got := f.Get(); got != "new-token-0123456789" || f.Err() == nil {
		t.Errorf("after an empty write Get = %q, Err = %v; want the previous token and an error", got, f.Err())
	}
	write(t, p, "third-token-0123456789\n", time.Unix(4000, 0))
	if got := f.Get(); got != "third-token-0123456789" || f.Err() != nil {
		t.Errorf("after the file is good again Get = %q, Err = %v", got, f.Err())
	}
}

// A failed load is reported once per change of the files, not on every
// Get; Reload loads again whether or not the files changed.
func TestFollowReportsOncePerChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	write(t, p, "good-token-0123456789\n", time.Unix(1000, 0))
	var errs, oks int
	f, err := Open("--token-file", p, 16, func(err error) {
		if err != nil {
			errs++
		} else {
			oks++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, "short\n", time.Unix(2000, 0))
	for range 3 {
		if got := f.Get(); got != "good-token-0123456789" {
			t.Fatalf("Get = %q after a bad write, want the last good token", got)
		}
	}
	if errs != 1 || oks != 0 {
		t.Errorf("a bad file read %d times (errors) and %d (ok) over three uses, want 1 and 0", errs, oks)
	}
	if err := f.Reload(); err == nil || errs != 2 {
		t.Errorf("Reload of a bad file = %v (errors %d), want the error again", err, errs)
	}
	write(t, p, "rotated-token-0123456789\n", time.Unix(3000, 0))
	if got := f.Get(); got != "rotated-token-0123456789" || oks != 1 || f.Err() != nil {
		t.Errorf("after a good write Get = %q, oks %d, Err %v", got, oks, f.Err())
	}
}
