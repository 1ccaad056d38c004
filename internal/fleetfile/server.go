package fleetfile

import (
	"slices"
	"strings"
	"time"
)

// Defaults of a server entry (docs/design.md §2).
const (
	DefaultHealthCheckInterval    = 30 * time.Second
	DefaultMaxConsecutiveFailures = 3
	DefaultConnectTimeout         = 10 * time.Second
	DefaultReadTimeout            = 30 * time.Second
)

var (
	serverModes = []Mode{ModeRemote, ModeSubprocess}
	allModes    = []Mode{ModeRemote, ModeSubprocess, ModeGroup}
)

// entryKeys lists every key an mcp_servers entry may hold and the modes
// that accept it. A key used under another mode is an error that says
// where it belongs.
var entryKeys = map[string][]Mode{
	"mode":        allModes,
	"description": allModes,

	"health_check_interval_s":  serverModes,
	"max_consecutive_failures": serverModes,
	"http":                     serverModes,
	"max_concurrency":          serverModes,
	"idle_ttl_s":               serverModes, // kept for subprocess; accepted and unused for remote (the seed documents it there)
	"transport":                serverModes,

	"endpoint": {ModeRemote},
	"auth":     {ModeRemote},
	"tls":      {ModeRemote},

	"command": {ModeSubprocess},
	"env":     {ModeSubprocess},

	"strategy":        {ModeGroup},
	"min_healthy":     {ModeGroup},
	"members":         {ModeGroup},
	"health":          {ModeGroup},
	"circuit_breaker": {ModeGroup},
	"failover":        {ModeGroup},
	"tool_access":     {ModeGroup},
	"auto_start":      {ModeGroup}, // accepted and unused: Hangar connects to members lazily or on the first probe
}

// Keys of the seed that only its docker mode reads.
var dockerKeys = []string{"args", "build", "image", "network", "network_mode", "read_only", "resources", "user", "volumes"}

// Keys of the seed that configure a policy Hangar does not enforce. They
// are errors rather than ignored, because ignoring them would expose tools
// or resources the user meant to hide.
var unsupportedKeys = map[string]string{
	"tools":                   "tool allow/deny lists and predefined tool schemas are not supported by Hangar; every tool the server lists is offered",
	"access":                  "prompt and resource access policies are not supported by Hangar",
	"tool_projection":         "tool digest pins and withdrawals are not supported by Hangar",
	"header_exposure":         "header exposure policies are not supported by Hangar",
	"capabilities":            "capability contracts are not enforced by Hangar",
	"canary":                  "per-tenant canary routing is not supported by Hangar",
	"circuit_reset_timeout_s": "write circuit_breaker.reset_timeout_s instead",
}

// keysFor lists the keys valid under mode, for suggestions.
func keysFor(mode Mode) []string {
	var keys []string
	for k, modes := range entryKeys {
		if slices.Contains(modes, mode) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// serverParse is a server being built, with what defaulting still needs.
type serverParse struct {
	server      *Server
	intervalSet bool
}

// entry parses one mcp_servers entry, or an inline group member when
// inline is set, and records it in fp. It returns the server it built, or
// nil for a group or an entry too broken to build.
func (p *parser) entry(id string, e pair, fp *fleetParse, inline bool) *Server {
	pairs, ok := p.mapping(e)
	if !ok {
		fp.skipped[id] = true
		return nil
	}
	return p.entryPairs(id, e, pairs, fp, inline)
}

// entryPairs is entry for the already decoded keys of the entry.
func (p *parser) entryPairs(id string, e pair, pairs []pair, fp *fleetParse, inline bool) *Server {
	mode, defaulted, ok := p.mode(pairs)
	if !ok {
		fp.skipped[id] = true
		return nil
	}
	var accepted []pair
	for _, pr := range pairs {
		if p.checkKey(pr, mode, defaulted) {
			accepted = append(accepted, pr)
		}
	}
	if mode == ModeGroup {
		if inline {
			p.errorf(resolveLine(e), e.path, "%q is a group: a group cannot be a member of a group", id)
			fp.skipped[id] = true
			return nil
		}
		p.group(id, e, accepted, fp)
		return nil
	}
	sp := p.server(id, mode, e, accepted)
	fp.servers = append(fp.servers, sp)
	if !inline {
		fp.fleet.Servers[id] = sp.server
	}
	return sp.server
}

// mode finds the entry's mode. An entry without one is a subprocess, as in
// MCP Hangar.
func (p *parser) mode(pairs []pair) (mode Mode, defaulted, ok bool) {
	i := slices.IndexFunc(pairs, func(pr pair) bool { return pr.key == "mode" })
	if i < 0 {
		return ModeSubprocess, true, true
	}
	pr := pairs[i]
	s, ok := p.str(pr)
	if !ok {
		return "", false, false
	}
	switch m := Mode(s); m {
	case ModeRemote, ModeSubprocess, ModeGroup:
		return m, false, true
	case "docker", "container", "podman":
		p.errorf(resolveLine(pr), pr.path, "mode %q is not supported: Hangar runs remote, subprocess and group entries "+
			"(run the container yourself and point a remote entry at it, or start it as a subprocess with command: [docker, run, -i, --rm, IMAGE])", s)
	default:
		p.errorf(resolveLine(pr), pr.path, "unknown mode %q%s", s, didYouMean(s, []string{"remote", "subprocess", "group"}))
	}
	return "", false, false
}

// checkKey reports a key that does not belong in an entry of this mode.
func (p *parser) checkKey(pr pair, mode Mode, defaulted bool) bool {
	if modes, known := entryKeys[pr.key]; known {
		if slices.Contains(modes, mode) {
			return true
		}
		names := make([]string, len(modes))
		for i, m := range modes {
			names[i] = string(m)
		}
		hint := ""
		if defaulted {
			hint = " (this entry has no mode, so it is a subprocess; set mode)"
		}
		p.keyError(pr, "%q applies only to mode %s, not %s%s", pr.key, strings.Join(names, " and "), mode, hint)
		return false
	}
	if reason, ok := unsupportedKeys[pr.key]; ok {
		p.keyError(pr, "%q: %s; remove it", pr.key, reason)
		return false
	}
	if slices.Contains(dockerKeys, pr.key) {
		p.keyError(pr, "%q applies only to mode docker, which Hangar does not run", pr.key)
		return false
	}
	p.keyError(pr, "unknown key %q%s", pr.key, didYouMean(pr.key, keysFor(mode)))
	return false
}

// server builds a remote or subprocess server from accepted keys.
func (p *parser) server(id string, mode Mode, e pair, pairs []pair) *serverParse {
	s := &Server{
		ID:                     id,
		Mode:                   mode,
		HealthCheckInterval:    DefaultHealthCheckInterval,
		MaxConsecutiveFailures: DefaultMaxConsecutiveFailures,
		HTTP:                   HTTPConfig{ConnectTimeout: DefaultConnectTimeout, ReadTimeout: DefaultReadTimeout},
	}
	sp := &serverParse{server: s}
	var headers, authHeader []header
	have := map[string]bool{}
	for _, pr := range pairs {
		have[pr.key] = true
		switch pr.key {
		case "description":
			s.Description, _ = p.str(pr)
		case "health_check_interval_s":
			if v, ok := p.seconds(pr, false); ok {
				s.HealthCheckInterval, sp.intervalSet = v, true
			}
		case "max_consecutive_failures":
			if v, ok := p.integer(pr, 1, 100); ok {
				s.MaxConsecutiveFailures = v
			}
		case "max_concurrency":
			s.MaxConcurrency, _ = p.integer(pr, 1, noMax)
		case "idle_ttl_s":
			if v, ok := p.seconds(pr, true); ok && mode == ModeSubprocess {
				s.IdleTTL = v
			}
		case "transport":
			p.transport(pr, mode)
		case "http":
			headers = p.httpSection(pr, s)
		case "endpoint":
			s.Endpoint = p.endpoint(pr)
		case "auth":
			authHeader = p.auth(pr)
		case "tls":
			p.tls(pr, s)
		case "command":
			if cmd, ok := p.strList(pr); ok && len(cmd) == 0 {
				p.errorf(resolveLine(pr), pr.path, "empty: give the program and its arguments, e.g. [python, -m, my_server]")
			} else {
				s.Command = cmd
			}
		case "env":
			s.Env = p.env(pr)
		}
	}
	switch {
	case mode == ModeRemote && !have["endpoint"]:
		p.errorf(e.keyN.Line, joinPath(e.path, "endpoint"), "missing: a remote server needs the URL of its Streamable HTTP endpoint")
	case mode == ModeSubprocess && !have["command"]:
		p.errorf(e.keyN.Line, joinPath(e.path, "command"), "missing: a subprocess server needs a command, e.g. [python, -m, my_server]")
	}
	s.Headers = p.mergeHeaders(headers, authHeader)
	return sp
}

// env reads a subprocess's environment: names without '=', values any
// scalar (numbers and booleans as written).
func (p *parser) env(pr pair) map[string]string {
	pairs, ok := p.mapping(pr)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, f := range pairs {
		if f.key == "" || strings.ContainsAny(f.key, "=\x00") {
			p.keyError(f, "invalid environment variable name %q", f.key)
			continue
		}
		v, ok := p.text(f)
		if !ok {
			continue
		}
		if strings.ContainsRune(v, 0) {
			p.errorf(resolveLine(f), f.path, "value contains a NUL byte")
			continue
		}
		out[f.key] = v
	}
	return out
}

// httpSection reads http: timeouts for every server, and for a remote
// server also headers and the seed's retry settings.
func (p *parser) httpSection(pr pair, s *Server) []header {
	pairs, ok := p.mapping(pr)
	if !ok {
		return nil
	}
	remoteOnly := []string{"headers", "max_retries", "retry_backoff_factor"}
	var headers []header
	for _, f := range pairs {
		if s.Mode != ModeRemote && slices.Contains(remoteOnly, f.key) {
			p.keyError(f, "%q applies only to mode remote", f.key)
			continue
		}
		switch f.key {
		case "connect_timeout":
			if v, ok := p.seconds(f, false); ok {
				s.HTTP.ConnectTimeout = v
			}
		case "read_timeout":
			if v, ok := p.seconds(f, false); ok {
				s.HTTP.ReadTimeout = v
			}
		case "headers":
			headers = p.headers(f)
		case "max_retries":
			// Checked and not used: a failed call moves to the next group
			// member (failover.max_attempts) instead of retrying one server.
			p.integer(f, 0, 100)
		case "retry_backoff_factor":
			if v, ok := p.number(f); ok && v < 0 {
				p.errorf(resolveLine(f), f.path, "must be at least 0")
			}
		default:
			keys := []string{"connect_timeout", "read_timeout"}
			if s.Mode == ModeRemote {
				keys = append(keys, remoteOnly...)
			}
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, keys))
		}
	}
	return headers
}
