package fleetfile

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

func (p *parser) transport(pr pair, mode Mode) {
	t, ok := p.str(pr)
	if !ok {
		return
	}
	switch {
	case mode == ModeRemote && (t == "streamable-http" || t == "streamable_http" || t == "http"):
	case mode == ModeSubprocess && t == "stdio":
	case mode == ModeRemote && t == "sse":
		p.errorf(resolveLine(pr), pr.path, "the legacy SSE transport is not supported: Hangar speaks Streamable HTTP to remote servers")
	case mode == ModeRemote:
		p.errorf(resolveLine(pr), pr.path, "unknown transport %q: a remote server speaks streamable-http", t)
	default:
		p.errorf(resolveLine(pr), pr.path, "unknown transport %q: a subprocess server speaks stdio", t)
	}
}

// endpoint checks a remote server's URL.
func (p *parser) endpoint(pr pair) string {
	s, ok := p.str(pr)
	if !ok {
		return ""
	}
	line := resolveLine(pr)
	u, err := url.Parse(s)
	switch {
	case s == "":
		p.errorf(line, pr.path, "empty: give the URL of the server's Streamable HTTP endpoint, e.g. http://localhost:8080/mcp")
	case err != nil:
		p.errorf(line, pr.path, "invalid URL %q: %v", s, urlErr(err))
	case u.Scheme != "http" && u.Scheme != "https":
		p.errorf(line, pr.path, "invalid URL %q: the scheme must be http or https", s)
	case u.Host == "" || u.Hostname() == "":
		p.errorf(line, pr.path, "invalid URL %q: no host", s)
	case u.User != nil:
		p.errorf(line, pr.path, "invalid URL %q: put credentials in auth, not in the URL", s)
	case u.Fragment != "" || strings.HasSuffix(s, "#"):
		p.errorf(line, pr.path, "invalid URL %q: a fragment (#...) is not sent to the server", s)
	default:
		if port := u.Port(); port != "" && !validPort(port) {
			p.errorf(line, pr.path, "invalid URL %q: bad port %q", s, port)
			return ""
		}
		return s
	}
	return ""
}

// urlErr strips url.Error's repetition of the URL.
func urlErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func validPort(port string) bool {
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}

// header is one HTTP header for a remote server, with where it was set.
type header struct {
	name, value string
	line        int
	path        string
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Headers Hangar's MCP client sets itself.
var reservedHeaders = []string{"Accept", "Connection", "Content-Length", "Content-Type", "Host",
	"Last-Event-Id", "Mcp-Protocol-Version", "Mcp-Session-Id", "Transfer-Encoding"}

func (p *parser) headers(pr pair) []header {
	pairs, ok := p.mapping(pr)
	if !ok {
		return nil
	}
	var out []header
	for _, f := range pairs {
		if v, ok := p.text(f); ok {
			out = append(out, header{name: f.key, value: v, line: f.keyN.Line, path: f.path})
		}
	}
	return out
}

// mergeHeaders checks header names and values and builds the map, keyed
// by canonical header name.
func (p *parser) mergeHeaders(lists ...[]header) map[string]string {
	var out map[string]string
	where := map[string]int{}
	for _, list := range lists {
		for _, h := range list {
			name := http.CanonicalHeaderKey(h.name)
			switch {
			case !headerName.MatchString(h.name):
				p.errorf(h.line, h.path, "invalid header name %q", h.name)
			case slices.Contains(reservedHeaders, name):
				p.errorf(h.line, h.path, "header %s is set by Hangar's MCP client and cannot be configured", name)
			case strings.ContainsAny(h.value, "\r\n\x00"):
				p.errorf(h.line, h.path, "header value contains a line break or NUL byte")
			case where[name] != 0:
				p.errorf(h.line, h.path, "header %s is set twice (also at line %d)", name, where[name])
			default:
				where[name] = h.line
				if out == nil {
					out = map[string]string{}
				}
				out[name] = h.value
			}
		}
	}
	return out
}

// authKeys lists the keys of each auth type of the seed.
var authKeys = map[string][]string{
	"none":    nil,
	"api_key": {"api_key", "api_key_header"},
	"bearer":  {"bearer_token"},
	"basic":   {"username", "password"},
}

// auth checks the seed's auth block of a remote server and turns it into
// the one header it stands for.
func (p *parser) auth(pr pair) []header {
	pairs, ok := p.mapping(pr)
	if !ok {
		return nil
	}
	fields := map[string]pair{}
	for _, f := range pairs {
		fields[f.key] = f
	}
	tp, ok := fields["type"]
	if !ok {
		p.errorf(pr.keyN.Line, joinPath(pr.path, "type"), "missing: one of none, api_key, bearer, basic")
		return nil
	}
	kind, ok := p.str(tp)
	if !ok {
		return nil
	}
	keys, known := authKeys[kind]
	if !known {
		p.errorf(resolveLine(tp), tp.path, "unknown auth type %q%s", kind, didYouMean(kind, []string{"none", "api_key", "bearer", "basic"}))
		return nil
	}
	for _, f := range pairs {
		switch {
		case f.key == "type" || slices.Contains(keys, f.key):
		case slices.Contains([]string{"api_key", "api_key_header", "bearer_token", "username", "password"}, f.key):
			p.keyError(f, "%q does not apply to auth type %s", f.key, kind)
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, append([]string{"type"}, keys...)))
		}
	}
	return p.authHeader(pr, kind, fields)
}

// authHeader builds the header of an auth block of a known type.
func (p *parser) authHeader(pr pair, kind string, fields map[string]pair) []header {
	required := func(key string) (string, bool) {
		f, ok := fields[key]
		if !ok {
			p.errorf(pr.keyN.Line, joinPath(pr.path, key), "missing: auth type %s needs %s", kind, key)
			return "", false
		}
		v, ok := p.str(f)
		if ok && v == "" {
			p.errorf(resolveLine(f), f.path, "empty")
			return "", false
		}
		return v, ok
	}
	at := func(key, name, value string) []header {
		f := fields[key]
		return []header{{name: name, value: value, line: f.keyN.Line, path: f.path}}
	}
	switch kind {
	case "api_key":
		name := "X-API-Key"
		if f, ok := fields["api_key_header"]; ok {
			if name, ok = p.str(f); !ok {
				return nil
			}
		}
		if key, ok := required("api_key"); ok {
			return at("api_key", name, key)
		}
	case "bearer":
		if tok, ok := required("bearer_token"); ok {
			return at("bearer_token", "Authorization", "Bearer "+tok)
		}
	case "basic":
		user, ok1 := required("username")
		pass, ok2 := required("password")
		switch {
		case !ok1 || !ok2:
		case strings.Contains(user, ":"):
			p.errorf(resolveLine(fields["username"]), fields["username"].path, "a basic-auth user name cannot contain ':'")
		default:
			cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
			return at("username", "Authorization", "Basic "+cred)
		}
	}
	return nil
}

// tls reads verify_ssl and ca_cert_path of a remote server.
func (p *parser) tls(pr pair, s *Server) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	verify := true
	var ca *pair
	for i, f := range pairs {
		switch f.key {
		case "verify_ssl":
			if v, ok := p.boolean(f); ok {
				verify = v
			}
		case "ca_cert_path":
			if v, ok := p.str(f); ok {
				if v == "" {
					p.errorf(resolveLine(f), f.path, "empty: give the path of a PEM file")
				}
				s.TLS.CAFile, ca = v, &pairs[i]
			}
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, []string{"verify_ssl", "ca_cert_path"}))
		}
	}
	s.TLS.InsecureSkipVerify = !verify
	if !verify && ca != nil {
		p.errorf(ca.keyN.Line, ca.path, "has no effect with verify_ssl: false; remove one of them")
	}
}
