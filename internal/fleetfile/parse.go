package fleetfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest fleet file Parse accepts (512 KiB). It is the
// one limit on a fleet file everywhere: the agent's --config, hangarctl
// config apply (dry run or not) and a replica's --fleet-config all parse
// with Parse, and everything that carries a fleet file fits it within the
// stock limits (etcd's 1.5 MiB request, which holds the file and its
// history entry, and gRPC's 4 MiB message, which holds a snapshot or an
// apply's diff).
const MaxFileSize = 512 << 10

// Load reads and parses the fleet file at path, expanding ${VAR} from the
// process environment. Problems in the file come back as Errors naming path.
func Load(path string) (*Fleet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read fleet config %q: %w", path, err)
	}
	return ParseAs(Agent, path, data)
}

// Reader names the process that parses a fleet file, which decides where
// its ${VAR} references take their values (package doc, Variables).
type Reader int

const (
	// Agent expands references against this process's environment: the
	// agent's, which runs the servers, so that one agent can reach a
	// server at another address, with other credentials, than the rest.
	Agent Reader = iota
	// ControlPlane reads no environment: a reference takes its default,
	// and one without a default is left to the agents (the value is not
	// checked here and stays empty in the control plane's Fleet). The
	// control plane stores and sends the file as written.
	ControlPlane
)

// ParseAs parses a fleet file the way the given process runs it: every
// running process (agent, replica, leader, admin API) parses through it, so
// the rule of ${VAR} lives in one place. Tests call Parse with their own
// variables.
func ParseAs(r Reader, source string, data []byte) (*Fleet, error) {
	if r == ControlPlane {
		return parse(&parser{file: source, deferUnset: true}, data)
	}
	return Parse(source, data, os.LookupEnv)
}

// Parse parses, validates and defaults a fleet file. source names the file
// in messages. lookupEnv resolves ${VAR} references; nil means no variable
// is set. On any problem Parse returns a nil Fleet and an Errors holding
// every problem found, sorted by line. Parse is safe for concurrent use.
func Parse(source string, data []byte, lookupEnv func(string) (string, bool)) (*Fleet, error) {
	return parse(&parser{file: source, lookupEnv: lookupEnv}, data)
}

func parse(p *parser, data []byte) (*Fleet, error) {
	source := p.file
	fleet := p.parse(data)
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return nil, p.errs
	}
	fleet.Source = source
	fleet.Raw = bytes.Clone(data)
	return fleet, nil
}

// Server returns the remote or subprocess server with the given id.
func (f *Fleet) Server(id string) (*Server, bool) {
	if f == nil {
		return nil, false
	}
	s, ok := f.Servers[id]
	return s, ok
}

// Group returns the group with the given id.
func (f *Fleet) Group(id string) (*Group, bool) {
	if f == nil {
		return nil, false
	}
	g, ok := f.Groups[id]
	return g, ok
}

// Top-level sections of MCP Hangar's config.yaml that configure its Python
// process. Hangar takes process settings from flags, HANGAR_* variables and
// its settings file instead, so these are accepted and not read (nor
// ${VAR}-expanded). None of them changes which servers exist or who may
// call which tool.
var ignoredSections = []string{
	"config_reload",       // file watching; hangar-agent reloads on its own terms
	"coordination",        // MCP Hangar's replica leases; Hangar uses etcd
	"event_store",         // MCP Hangar's event persistence
	"execution",           // concurrency limits: hangar-agent flags (per server: max_concurrency)
	"hot_loading",         // MCP Hangar's registry hot loading
	"http",                // graceful_shutdown_timeout_s of MCP Hangar's HTTP server
	"logging",             // hangar-agent logs with log/slog, configured by flags
	"observability",       // tracing and Langfuse; Hangar exports Prometheus metrics
	"persistence",         // MCP Hangar's SQLite/PostgreSQL state
	"rate_limit",          // MCP Hangar's command-bus limit
	"relay_tasks_enabled", // MCP Hangar's task relay
	"resource_links",      // MCP Hangar's resource_link memory per tenant
	"retry",               // MCP Hangar's retry policy; Hangar retries with failover.max_attempts
	"startup_checks",      // MCP Hangar's startup self-checks
	"truncation",          // MCP Hangar's result truncation; Hangar bounds results itself
}

// Top-level sections that configure a security or discovery feature Hangar
// does not have. Ignoring them would quietly drop a control the user relies
// on, so they are errors. auth, approvals and discovery are accepted when
// they only say enabled: false.
var rejectedSections = map[string]string{
	"approvals":    "human approval holds are not supported by Hangar",
	"auth":         "front-door authentication is set with hangar-agent flags (--auth-token-file), not in the fleet file",
	"discovery":    "server discovery is not supported by Hangar: list every server under mcp_servers",
	"headers":      "Mcp-Param-* header validation is not supported by Hangar",
	"interceptors": "interceptors (validators) are not supported by Hangar",
	"ui_resources": "ui:// resource policies are not supported by Hangar",
}

var disableableSections = []string{"approvals", "auth", "discovery"}

var topKeys = func() []string {
	keys := []string{"mcp_servers", "providers", "health_check", "health", "tool_access"}
	keys = append(keys, ignoredSections...)
	for k := range rejectedSections {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}()

// fleetParse holds what the first pass learns and the second pass needs.
type fleetParse struct {
	fleet    *Fleet
	defaults defaults
	entries  map[string]int // top-level id → line of its key
	skipped  map[string]bool
	groups   []*groupParse
	servers  []*serverParse
}

type defaults struct {
	healthInterval time.Duration // from health_check.interval_s; 0: none
	toolAccess     string
	toolAccessSet  bool
	toolAccessAt   pair // where the top-level tool_access was written
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) (fleet *Fleet) {
	if len(data) > MaxFileSize {
		p.errorf(0, "", "the file is %d bytes, larger than the %d-byte (%d KiB) limit on a fleet file: split it, or move large values (descriptions, environments) out of it",
			len(data), MaxFileSize, MaxFileSize>>10)
		return nil
	}
	root, ok := p.document(data)
	if !ok {
		return nil
	}
	fp := &fleetParse{
		fleet:   &Fleet{Servers: map[string]*Server{}, Groups: map[string]*Group{}},
		entries: map[string]int{},
		skipped: map[string]bool{},
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(max(root.Line, 1), "", "expected a map with an mcp_servers key at the top of the file, got %s", describe(root))
		return nil
	}
	top, _ := p.mapping(pair{keyN: root, val: root})
	var servers *pair
	var health *pair
	for i, pr := range top {
		switch {
		case pr.key == "mcp_servers" || pr.key == "providers":
			if servers != nil {
				p.keyError(pr, "%q and %q both list servers; keep only mcp_servers (providers is its old name)", servers.key, pr.key)
				continue
			}
			servers = &top[i]
		case pr.key == "health_check" || pr.key == "health":
			if health != nil {
				p.keyError(pr, "%q and %q are the same section; keep one", health.key, pr.key)
				continue
			}
			health = &top[i]
			p.healthSection(pr, &fp.defaults)
		case pr.key == "tool_access":
			p.topToolAccess(pr, &fp.defaults)
		case slices.Contains(ignoredSections, pr.key):
		case rejectedSections[pr.key] != "":
			if slices.Contains(disableableSections, pr.key) && disabled(pr.val) {
				continue
			}
			p.keyError(pr, "section %q: %s; remove it", pr.key, rejectedSections[pr.key])
		default:
			p.keyError(pr, "unknown key %q%s; Hangar reads mcp_servers, health_check and tool_access "+
				"and ignores MCP Hangar's process sections", pr.key, didYouMeanOnly(pr.key, topKeys))
		}
	}
	if servers == nil {
		p.errorf(root.Line, "mcp_servers", "missing: the file needs an mcp_servers map of server ids to entries")
		return nil
	}
	p.servers(*servers, fp)
	p.resolveMembers(fp)
	return fp.fleet
}

// document decodes the single YAML document of the file and returns its
// top-level node.
func (p *parser) document(data []byte) (root *yaml.Node, ok bool) {
	defer func() {
		// The YAML library must not take the process down with a bad file.
		if r := recover(); r != nil {
			p.errorf(0, "", "invalid YAML: %v", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(1, "mcp_servers", "missing: the file is empty; it needs an mcp_servers map of server ids to entries")
		} else {
			p.yamlError(err, data)
		}
		return nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(next.Line, "", "more than one YAML document (---): a fleet file holds one")
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err, data)
		return nil, false
	}
	root = &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if isNull(root) {
		p.errorf(1, "mcp_servers", "missing: the file is empty; it needs an mcp_servers map of server ids to entries")
		return nil, false
	}
	return root, true
}

func (p *parser) yamlError(err error, data []byte) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		if msg == "did not find expected key" || msg == "did not find expected '-' indicator" {
			// The YAML library reports where the enclosing block starts,
			// not the line that breaks it: find that line.
			if bad := breakingLine(data, line, msg); bad > 0 {
				p.errorf(bad, "", "invalid YAML: %s: this line is indented differently from the lines above it", msg)
				return
			}
			msg += " in the block that starts here (check the indentation of its lines)"
		}
		p.errorf(line, "", "invalid YAML: %s", msg)
		return
	}
	p.errorf(0, "", "invalid YAML: %v", err)
}

// breakingLine returns the first line after from whose inclusion makes the
// document fail with msg: the line that breaks the block the YAML library
// names. It returns 0 when no prefix of the document fails that way. A
// binary search over prefixes ending at a line keeps it to a few parses.
func breakingLine(data []byte, from int, msg string) int {
	ends := lineEnds(data)
	fails := func(n int) bool { // the first n lines fail with msg
		var node yaml.Node
		err := yaml.Unmarshal(data[:ends[n-1]], &node)
		m := yamlLine.FindStringSubmatch(fmt.Sprint(err))
		return m != nil && m[2] == msg
	}
	lo, hi := max(from, 1), len(ends) // fails(hi) should hold: the whole document fails
	if hi < lo || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// lineEnds returns the offset just past each line of data.
func lineEnds(data []byte) []int {
	var ends []int
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// disabled reports whether a section is a map whose only setting is
// enabled: false.
func disabled(n *yaml.Node) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return false
	}
	k, v := resolve(n.Content[0]), resolve(n.Content[1])
	return k.Value == "enabled" && v.ShortTag() == "!!bool" && (v.Value == "false" || v.Value == "False" || v.Value == "FALSE")
}

// healthSection reads the seed's fleet-wide health_check (or health)
// section: interval_s becomes the default health_check_interval_s.
func (p *parser) healthSection(pr pair, d *defaults) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	for _, f := range pairs {
		switch f.key {
		case "enabled":
			if on, ok := p.boolean(f); ok && !on {
				p.errorf(resolveLine(f), f.path, "Hangar always probes its servers; remove enabled: false")
			}
		case "interval_s":
			if v, ok := p.seconds(f, false); ok {
				d.healthInterval = v
			}
		default:
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, []string{"enabled", "interval_s"}))
		}
	}
}

// topToolAccess reads the seed's top-level tool_access.mode, the default
// of every group's tool_access.mode.
func (p *parser) topToolAccess(pr pair, d *defaults) {
	pairs, ok := p.mapping(pr)
	if !ok {
		return
	}
	for _, f := range pairs {
		if f.key != "mode" {
			p.keyError(f, "unknown key %q%s", f.key, didYouMean(f.key, []string{"mode"}))
			continue
		}
		if m, ok := p.toolAccessMode(f); ok {
			d.toolAccess, d.toolAccessSet, d.toolAccessAt = m, true, f
		}
	}
}

// servers runs the first pass over mcp_servers: every entry on its own.
func (p *parser) servers(pr pair, fp *fleetParse) {
	entries, ok := p.mapping(pr)
	if !ok {
		return
	}
	if len(entries) == 0 {
		p.errorf(resolveLine(pr), pr.path, "no servers: define at least one server")
		return
	}
	for _, e := range entries {
		fp.entries[e.key] = e.keyN.Line
	}
	for _, e := range entries {
		if !p.checkID(e.key, e.keyN.Line, e.parent) {
			fp.skipped[e.key] = true
			continue
		}
		fp.fleet.Order = append(fp.fleet.Order, e.key)
		p.entry(e.key, e, fp, false)
	}
	for _, sp := range fp.servers {
		if !sp.intervalSet && fp.defaults.healthInterval > 0 {
			sp.server.HealthCheckInterval = fp.defaults.healthInterval
		}
	}
	used := false
	for _, gp := range fp.groups {
		if !gp.toolAccessSet && fp.defaults.toolAccessSet {
			gp.group.ToolAccess.Mode = fp.defaults.toolAccess
			used = true
		}
	}
	if d := fp.defaults; d.toolAccessSet && !used {
		// A default nobody takes would be silently ignored: the user
		// meant something else (tool_access applies to groups only).
		p.errorf(resolveLine(d.toolAccessAt), "tool_access.mode", "top-level tool_access.mode %q has no effect: it is the default "+
			"of groups' tool_access, and no group takes it (the fleet has no group, or every group sets its own); "+
			"move it into a group (mode: group) or remove it", d.toolAccess)
	}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// checkID reports an id that cannot name a server: ids appear in metric
// labels and in group__tool names, so they are kept to tool-name characters.
func (p *parser) checkID(id string, line int, path string) bool {
	if len(id) > 64 || !idPattern.MatchString(id) {
		p.errorf(line, path, "invalid id %q: use at most 64 letters, digits, '_', '-' and '.', starting with a letter or digit", id)
		return false
	}
	return true
}

// Hash is the hex SHA-256 of a fleet file's bytes: the one fingerprint of
// a fleet file everywhere (a snapshot's config_hash, Hello's config_hash
// and config_sha256, the config history, hangarctl's views). It hashes the
// file as written, before any ${VAR} expansion.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
