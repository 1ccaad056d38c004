// Package secretfile reads secrets (bearer tokens, passwords) from files
// under one rule, and follows files as they change, so rotating a secret
// (or a certificate: package tlsfiles builds on Followed) needs no
// restart.
//
// The rule: the secret is the file's first line with surrounding spaces
// trimmed; the rest of the file is ignored. An empty secret, or one shorter
// than the minimum its reader asks for, is refused. Get re-reads the file
// when it changed (a stat per use: modification time, size, inode); a
// changed file that is unreadable or breaks the rule keeps the last good
// secret, so a half-written file locks no one out, and Err says why.
//
// Files that hold more than one secret (the control plane's
// --agent-tokens-file) are followed with Follow and their own parser.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// File is a secret kept in a file. It is safe for concurrent use.
type File struct {
	*Followed[string]
}

// Open reads the secret at path; flag names the setting in errors
// (--auth-token-file). minLen is the shortest secret accepted (at least 1).
// onReload, if not nil, hears of each later re-read (see Follow).
func Open(flag, path string, minLen int, onReload ...func(error)) (*File, error) {
	var hook func(string, error)
	if len(onReload) > 0 && onReload[0] != nil {
		hook = func(_ string, err error) { onReload[0](err) }
	}
	f, err := Follow([]string{path}, func() (string, error) { return Read(flag, path, minLen) }, hook)
	if err != nil {
		return nil, err
	}
	return &File{f}, nil
}

// Read applies the rule to the file at path once; flag names the setting
// in errors.
func Read(flag, path string, minLen int) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", flag, err)
	}
	s := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
	switch {
	case s == "":
		return "", fmt.Errorf("%s %s: the first line is empty; write the secret on it", flag, path)
	case len(s) < max(minLen, 1):
		return "", fmt.Errorf("%s %s: the secret must be at least %d characters", flag, path, minLen)
	}
	return s, nil
}
