package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"

	"github.com/hangarmesh/hangar/controlplane/admin"
	"github.com/hangarmesh/hangar/internal/secretfile"
)

// minTokenLen is the shortest bearer token accepted.
const minTokenLen = 16

// tokenFiles follows the replica's token files (--auth-token-file,
// --read-only-token-file, --agent-tokens-file) for the Authorizer: every
// call is checked against the files' current tokens (a stat per file per
// call; a file is read again only when it changed), so a rotated token is
// accepted and the token it replaced refused from the next call on. There
// is no grace window: an operator who wants one gives callers the new
// token first where the role allows two (a second agent id, the read-only
// token), then rotates. Streams opened before a rotation are not cut.
//
// A file that no longer reads (missing, empty, a short token, a bad
// line) keeps its last good tokens, as does a rotation that breaks a rule
// across files (the read-only token equal to the admin one, an agent with
// an operator's token); both are logged once per change.
type tokenFiles struct {
	admin, readOnly *secretfile.File
	agents          *secretfile.Followed[map[string]string]
	log             *slog.Logger

	mu      sync.Mutex
	last    admin.Tokens // the tokens in force
	refused admin.Tokens // the last combination refused, logged once
}

// openTokens reads the token files named by s; nil when none is.
func openTokens(s Settings, log *slog.Logger) (*tokenFiles, error) {
	if s.AuthTokenFile == "" && s.ReadOnlyTokenFile == "" && s.AgentTokensFile == "" {
		return nil, nil
	}
	t := &tokenFiles{log: log}
	var err error
	if t.admin, err = openToken("--auth-token-file", s.AuthTokenFile, log); err != nil {
		return nil, err
	}
	if t.readOnly, err = openToken("--read-only-token-file", s.ReadOnlyTokenFile, log); err != nil {
		return nil, err
	}
	if s.AgentTokensFile != "" {
		path := s.AgentTokensFile
		t.agents, err = secretfile.Follow([]string{path}, func() (map[string]string, error) { return parseAgentTokens(path) },
			func(_ map[string]string, err error) { logTokenReload(log, "--agent-tokens-file", path, err) })
		if err != nil {
			return nil, err
		}
	}
	t.last = t.read()
	if err := checkTokens(t.last); err != nil {
		return nil, err
	}
	return t, nil
}

func openToken(flag, path string, log *slog.Logger) (*secretfile.File, error) {
	if path == "" {
		return nil, nil
	}
	return secretfile.Open(flag, path, minTokenLen, func(err error) { logTokenReload(log, flag, path, err) })
}

func logTokenReload(log *slog.Logger, flag, path string, err error) {
	if err != nil {
		log.Error("token_reload_failed", "flag", flag, "path", path, "error", err.Error(), "running", "the previous tokens of the file")
		return
	}
	log.Info("token_reloaded", "flag", flag, "path", path)
}

// read gets each file's current tokens.
func (t *tokenFiles) read() admin.Tokens {
	var cur admin.Tokens
	if t.admin != nil {
		cur.Admin = t.admin.Get()
	}
	if t.readOnly != nil {
		cur.ReadOnly = t.readOnly.Get()
	}
	if t.agents != nil {
		cur.Agents = t.agents.Get()
	}
	return cur
}

// Current is the Authorizer's source of tokens (admin.Authorizer.Current).
func (t *tokenFiles) Current() admin.Tokens {
	cur := t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	if sameTokens(cur, t.last) {
		return t.last
	}
	if err := checkTokens(cur); err != nil {
		if !sameTokens(cur, t.refused) {
			t.refused = cur
			t.log.Error("token_reload_failed", "error", err.Error(), "running", "the previous tokens of every file")
		}
		return t.last
	}
	t.last = cur
	return cur
}

// Reload reads every file again (SIGHUP) and says what it refused.
func (t *tokenFiles) Reload() error {
	var errs []error
	for _, f := range []*secretfile.File{t.admin, t.readOnly} {
		if f != nil {
			errs = append(errs, f.Reload())
		}
	}
	if t.agents != nil {
		errs = append(errs, t.agents.Reload())
	}
	if err := checkTokens(t.read()); err != nil {
		errs = append(errs, err)
	}
	t.Current()
	return errors.Join(errs...)
}

func sameTokens(a, b admin.Tokens) bool {
	return a.Admin == b.Admin && a.ReadOnly == b.ReadOnly && maps.Equal(a.Agents, b.Agents)
}

// checkTokens enforces the rules across files: each role its own tokens.
func checkTokens(t admin.Tokens) error {
	if t.ReadOnly != "" && t.ReadOnly == t.Admin {
		return errors.New("--read-only-token-file holds the admin token of --auth-token-file: give read-only callers a token of their own")
	}
	for id, tok := range t.Agents {
		if tok == t.Admin || tok == t.ReadOnly {
			return fmt.Errorf("--agent-tokens-file: agent %q has an operator's token (--auth-token-file or --read-only-token-file)", id)
		}
	}
	return nil
}

// parseAgentTokens reads --agent-tokens-file: one "AGENT_ID TOKEN" per
// line, blank lines and lines starting with '#' ignored. It returns agent
// id → token. Each token must be at least minTokenLen characters and
// unique.
func parseAgentTokens(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --agent-tokens-file: %w", err)
	}
	tokens := map[string]string{}
	owner := map[string]string{} // token → agent id
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("--agent-tokens-file %s:%d", path, n)
		f := strings.Fields(line)
		switch {
		case len(f) != 2:
			return nil, fmt.Errorf("%s: want \"AGENT_ID TOKEN\", got %d fields", where, len(f))
		case len(f[1]) < minTokenLen:
			return nil, fmt.Errorf("%s: the token of %q must be at least %d characters", where, f[0], minTokenLen)
		case tokens[f[0]] != "":
			return nil, fmt.Errorf("%s: agent %q is listed twice", where, f[0])
		case owner[f[1]] != "":
			return nil, fmt.Errorf("%s: agent %q has the token of agent %q: give each agent its own", where, f[0], owner[f[1]])
		}
		tokens[f[0]], owner[f[1]] = f[1], f[0]
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--agent-tokens-file %s lists no agent", path)
	}
	return tokens, nil
}
