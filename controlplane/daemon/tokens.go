package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/hangarmesh/hangar/internal/secretfile"
)

// minTokenLen is the shortest bearer token accepted.
const minTokenLen = 16

// readToken reads a bearer token file under secretfile's rule (the first
// line, trimmed, at least minTokenLen characters); "" when path is. The
// control plane reads it at start (a restart picks up a rotated file).
func readToken(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := secretfile.Open(flag, path, minTokenLen)
	if err != nil {
		return "", err
	}
	return f.Get(), nil
}

// readAgentTokens reads --agent-tokens-file: one "AGENT_ID TOKEN" per
// line, blank lines and lines starting with '#' ignored. It returns agent
// id → token; nil when path is "". Each token must be unique and differ
// from the operators' tokens.
func readAgentTokens(path string, operatorTokens ...string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
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
		for _, op := range operatorTokens {
			if op != "" && op == f[1] {
				return nil, fmt.Errorf("%s: agent %q has an operator's token (--auth-token-file or --read-only-token-file)", where, f[0])
			}
		}
		tokens[f[0]], owner[f[1]] = f[1], f[0]
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--agent-tokens-file %s lists no agent", path)
	}
	return tokens, nil
}
