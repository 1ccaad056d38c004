// Package secretfile reads secrets (bearer tokens) from files under one
// rule, and follows the file as it changes, so rotating a token needs no
// restart.
//
// The rule: the secret is the file's first line with surrounding spaces
// trimmed; the rest of the file is ignored. An empty secret, or one shorter
// than the minimum its reader asks for, is refused. Get re-reads the file
// when its modification time or size changed (a stat per use); a changed
// file that is unreadable or breaks the rule keeps the last good secret,
// so a half-written file locks no one out, and Err says why.
package secretfile

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// File is a secret kept in a file. It is safe for concurrent use.
type File struct {
	flag, path string
	minLen     int

	mu      sync.Mutex
	mod     time.Time
	size    int64
	secret  string
	lastErr error
}

// Open reads the secret at path; flag names the setting in errors
// (--auth-token-file). minLen is the shortest secret accepted (at least 1).
func Open(flag, path string, minLen int) (*File, error) {
	f := &File{flag: flag, path: path, minLen: max(minLen, 1)}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", flag, err)
	}
	if f.secret, err = f.read(); err != nil {
		return nil, err
	}
	f.mod, f.size = st.ModTime(), st.Size()
	return f, nil
}

// Get returns the secret, re-reading the file first if it changed.
func (f *File) Get() string {
	st, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.lastErr = fmt.Errorf("read %s: %w", f.flag, err)
		return f.secret
	}
	if st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.secret
	}
	s, err := f.read()
	if err != nil {
		f.lastErr = err
		return f.secret // the mtime is not recorded: the next use tries again
	}
	f.secret, f.mod, f.size, f.lastErr = s, st.ModTime(), st.Size(), nil
	return s
}

// Err is why the last re-read failed (the previous secret stays), or nil.
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// read applies the rule to the file's content.
func (f *File) read() (string, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.flag, err)
	}
	s := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
	switch {
	case s == "":
		return "", fmt.Errorf("%s %s: the first line is empty; write the secret on it", f.flag, f.path)
	case len(s) < f.minLen:
		return "", fmt.Errorf("%s %s: the secret must be at least %d characters", f.flag, f.path, f.minLen)
	}
	return s, nil
}
