package fleetfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parser walks the YAML node tree of one fleet file and collects every
// problem it finds instead of stopping at the first.
type parser struct {
	file      string
	lookupEnv func(string) (string, bool)
	// deferUnset: a reference without a value or default is no error;
	// the value is left unchecked (the control plane's reading, ParseAs).
	deferUnset bool
	errs       Errors
	work       int // map entries and list items visited, aliases and merges included
}

// maxWork bounds the walk: aliases and merge keys let a small file name the
// same large map many times over.
const maxWork = 1_000_000

// spend counts n visited nodes and reports, once, a file whose aliases
// expand beyond maxWork.
func (p *parser) spend(n int) bool {
	p.work += n
	if p.work > maxWork {
		if p.work-n <= maxWork {
			p.errorf(0, "", "the file expands to more than %d entries through aliases and merge keys", maxWork)
		}
		return false
	}
	return true
}

// pair is one key/value of a YAML mapping, with the key path of the value.
type pair struct {
	key    string
	keyN   *yaml.Node
	val    *yaml.Node
	parent string // path of the mapping or list holding this pair
	path   string // path of the value
}

func (p *parser) errorf(line int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// keyError reports a problem with a key itself, at the key's line, under
// the path of the mapping that holds it.
func (p *parser) keyError(pr pair, format string, args ...any) {
	p.errorf(pr.keyN.Line, pr.parent, format, args...)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an unexpected YAML node"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("a string (%q)", v)
	case "!!int":
		return "an integer (" + v + ")"
	case "!!float":
		return "a number (" + v + ")"
	case "!!bool":
		return "a boolean (" + v + ")"
	case "!!null":
		return "nothing"
	default:
		return fmt.Sprintf("a %s value (%q)", n.ShortTag(), v)
	}
}

func (p *parser) typeError(pr pair, want string) {
	p.errorf(resolveLine(pr), pr.path, "expected %s, got %s", want, describe(pr.val))
}

// resolveLine is the line of the value, or of its key when the value is
// empty (an empty value sits on the key's line anyway).
func resolveLine(pr pair) int {
	if pr.val != nil && pr.val.Line > 0 {
		return pr.val.Line
	}
	return pr.keyN.Line
}

// mapping returns the pairs of the mapping n in file order, with "<<" merge
// keys expanded (explicit keys win over merged ones). It reports duplicate
// keys and non-scalar keys. ok is false when n is not a mapping.
func (p *parser) mapping(pr pair) (pairs []pair, ok bool) {
	n := resolve(pr.val)
	if n == nil || n.Kind != yaml.MappingNode {
		p.typeError(pr, "a map")
		return nil, false
	}
	if !p.spend(len(n.Content)/2 + 1) {
		return nil, false
	}
	seen := map[string]*yaml.Node{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, p.mergePairs(v, pr.path, 0)...)
			continue
		}
		key, good := p.keyString(k, pr.path)
		if !good {
			continue
		}
		if first, dup := seen[key]; dup {
			p.errorf(k.Line, pr.path, "duplicate key %q (first at line %d)", key, first.Line)
			continue
		}
		seen[key] = k
		pairs = append(pairs, pair{key: key, keyN: k, val: v, parent: pr.path, path: joinPath(pr.path, key)})
	}
	for _, m := range merged {
		if _, dup := seen[m.key]; !dup {
			seen[m.key] = m.keyN
			pairs = append(pairs, m)
		}
	}
	return pairs, true
}

// mergePairs expands the value of a "<<" key: a mapping, or a list of
// mappings whose earlier entries win.
func (p *parser) mergePairs(v *yaml.Node, path string, depth int) []pair {
	v = resolve(v)
	if v == nil || depth > 8 {
		p.errorf(0, path, "merge key (<<) nested too deeply")
		return nil
	}
	var out []pair
	switch v.Kind {
	case yaml.MappingNode:
		sub, _ := p.mapping(pair{keyN: v, val: v, path: path})
		out = sub
	case yaml.SequenceNode:
		if !p.spend(len(v.Content)) {
			return nil
		}
		seen := map[string]bool{}
		for _, item := range v.Content {
			for _, m := range p.mergePairs(item, path, depth+1) {
				if !seen[m.key] {
					seen[m.key] = true
					out = append(out, m)
				}
			}
		}
	default:
		p.errorf(v.Line, path, "merge key (<<) needs a map or a list of maps, got %s", describe(v))
	}
	return out
}

func (p *parser) keyString(k *yaml.Node, path string) (string, bool) {
	k = resolve(k)
	if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
		p.errorf(k.Line, path, "keys must be plain names, got %s", describe(k))
		return "", false
	}
	return k.Value, true
}

// list returns the items of a sequence value with their paths.
func (p *parser) list(pr pair) ([]pair, bool) {
	n := resolve(pr.val)
	if n == nil || n.Kind != yaml.SequenceNode {
		p.typeError(pr, "a list")
		return nil, false
	}
	if !p.spend(len(n.Content) + 1) {
		return nil, false
	}
	items := make([]pair, len(n.Content))
	for i, v := range n.Content {
		items[i] = pair{key: strconv.Itoa(i), keyN: v, val: v, parent: pr.path, path: indexPath(pr.path, i)}
	}
	return items, true
}

// str returns a string value with ${VAR} references expanded.
func (p *parser) str(pr pair) (string, bool) {
	n := resolve(pr.val)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.typeError(pr, "a string")
		return "", false
	}
	return p.expand(n.Value, n.Line, pr.path)
}

// text returns any scalar but null as text: strings expanded, numbers and
// booleans as written. It is used where the target is text by nature
// (environment variables, HTTP headers).
func (p *parser) text(pr pair) (string, bool) {
	n := resolve(pr.val)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.typeError(pr, "a string")
		return "", false
	}
	if n.ShortTag() == "!!str" {
		return p.expand(n.Value, n.Line, pr.path)
	}
	return n.Value, true
}

func (p *parser) boolean(pr pair) (bool, bool) {
	n := resolve(pr.val)
	var b bool
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.typeError(pr, "true or false")
		return false, false
	}
	return b, true
}

// integer returns an integer in [lo, hi].
func (p *parser) integer(pr pair, lo, hi int) (int, bool) {
	n := resolve(pr.val)
	var v int64
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.typeError(pr, "an integer")
		return 0, false
	}
	if v < int64(lo) || v > int64(hi) {
		p.errorf(n.Line, pr.path, "%d is out of range: %s", v, rangeText(lo, hi))
		return 0, false
	}
	return int(v), true
}

// noMax is the upper bound of integers that have none.
const noMax = math.MaxInt32

func rangeText(lo, hi int) string {
	if hi == noMax {
		return fmt.Sprintf("must be at least %d", lo)
	}
	return fmt.Sprintf("must be %d..%d", lo, hi)
}

// number returns an integer or floating point value.
func (p *parser) number(pr pair) (float64, bool) {
	n := resolve(pr.val)
	var v float64
	if n == nil || n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") ||
		n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.typeError(pr, "a number")
		return 0, false
	}
	return v, true
}

// maxSeconds bounds every duration in the file (one day).
const maxSeconds = 86400

// seconds returns a duration given in seconds (fractions allowed), greater
// than zero, or zero too when zeroOK.
func (p *parser) seconds(pr pair, zeroOK bool) (time.Duration, bool) {
	v, ok := p.number(pr)
	if !ok {
		return 0, false
	}
	if v < 0 || (v == 0 && !zeroOK) || v > maxSeconds {
		low := "greater than 0"
		if zeroOK {
			low = "at least 0"
		}
		p.errorf(resolveLine(pr), pr.path, "%s is out of range: seconds must be %s and at most %d", resolve(pr.val).Value, low, maxSeconds)
		return 0, false
	}
	d := time.Duration(v * float64(time.Second))
	if v > 0 && d < time.Millisecond {
		p.errorf(resolveLine(pr), pr.path, "%s seconds is below the 1 ms resolution", resolve(pr.val).Value)
		return 0, false
	}
	return d, true
}

// strList returns a list of non-empty strings.
func (p *parser) strList(pr pair) ([]string, bool) {
	items, ok := p.list(pr)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, good := p.str(it)
		if !good {
			ok = false
			continue
		}
		if s == "" {
			p.errorf(resolveLine(it), it.path, "empty string")
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// expand replaces ${VAR} and ${VAR:-default} in s, the way MCP Hangar does:
// a set variable (even an empty one) wins, then the default; an unset
// variable without a default is an error. Text that is not a well-formed
// reference (a lone "$", "$VAR", "${1}") is kept as written. Defaults are
// not expanded again. ok is false when a variable was missing; that is
// reported (unless the parser defers it to the agents), and the value is
// not checked further.
func (p *parser) expand(s string, line int, path string) (_ string, ok bool) {
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	ok = true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), ok
		}
		b.WriteString(s[:i])
		name, def, hasDef, n := parseRef(s[i:])
		if n == 0 {
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		switch v, set := p.getenv(name); {
		case set:
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		case p.deferUnset:
			ok = false
		default:
			p.errorf(line, path, "environment variable %s is not set and has no default (write ${%s:-} to allow an empty value)", name, name)
			ok = false
		}
		s = s[i+n:]
	}
}

func (p *parser) getenv(name string) (string, bool) {
	if p.lookupEnv == nil {
		return "", false
	}
	return p.lookupEnv(name)
}

// parseRef parses "${NAME}" or "${NAME:-default}" at the start of s and
// returns its length, or n == 0 when s does not start with a reference.
func parseRef(s string) (name, def string, hasDef bool, n int) {
	j := 2
	for j < len(s) && (s[j] == '_' || isLetter(s[j]) || (j > 2 && isDigit(s[j]))) {
		j++
	}
	if j == 2 || j == len(s) {
		return "", "", false, 0
	}
	name = s[2:j]
	if s[j] == '}' {
		return name, "", false, j + 1
	}
	if !strings.HasPrefix(s[j:], ":-") {
		return "", "", false, 0
	}
	end := strings.IndexByte(s[j+2:], '}')
	if end < 0 {
		return "", "", false, 0
	}
	return name, s[j+2 : j+2+end], true, j + 2 + end + 1
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
