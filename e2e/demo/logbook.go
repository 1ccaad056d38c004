package demo

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logEvent is one slog text line of a process the demo started.
type logEvent struct {
	At    time.Time // the line's time= (milliseconds)
	Level string
	Name  string            // msg=, the stable event name
	Attrs map[string]string // every other key, values unquoted
}

// slogLine splits a slog text line into time, level, event name and the rest.
var slogLine = regexp.MustCompile(`^time=(\S+) level=(\S+) msg=(\S+) ?(.*)$`)

// slogAttr is one key=value or key="quoted value" of a slog text line.
var slogAttr = regexp.MustCompile(`([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// parseLogLine parses a slog text line; ok is false for any other line.
func parseLogLine(line string) (ev logEvent, ok bool) {
	m := slogLine.FindStringSubmatch(line)
	if m == nil {
		return logEvent{}, false
	}
	at, _ := time.Parse(time.RFC3339Nano, m[1]) // zero if unparsable: never matches a time window
	return logEvent{At: at, Level: m[2], Name: m[3], Attrs: parseAttrs(m[4])}, true
}

// parseAttrs parses the key=value pairs of a slog text line.
func parseAttrs(s string) map[string]string {
	attrs := map[string]string{}
	for _, a := range slogAttr.FindAllStringSubmatch(s, -1) {
		v := a[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		attrs[a[1]] = v
	}
	return attrs
}

// uint reads a numeric attribute (0 if absent or not a number).
func (ev logEvent) uint(key string) uint64 {
	n, _ := strconv.ParseUint(ev.Attrs[key], 10, 64)
	return n
}

// maxLogLine caps a shown log line, so long error texts stay on one line.
const maxLogLine = 150

// maxProbeFailuresShown caps the health_check_failed lines shown for a
// member in a row (until it recovers): a dead member fails a probe a second.
const maxProbeFailuresShown = 2

// logbook receives one process's output (as proc's Echo), keeps its slog
// events for the demo to wait on, and prints the interesting ones, and
// every warning or error, compactly under the process's label. It is safe
// for concurrent use.
type logbook struct {
	label string          // "agent A", "control plane"
	shown map[string]bool // event names printed as they happen
	all   bool            // print every line instead

	mu            sync.Mutex
	out           *console // nil: print nothing
	buf           []byte
	events        []logEvent
	start         time.Time      // set by goLive: print liveOnly events and times since start
	probeFailures map[string]int // health_check_failed lines in a row, by member
}

// liveOnly are events printed only once the traffic runs: before, the
// steps summarize them (every agent that connects changes the snapshot).
var liveOnly = map[string]bool{"snapshot_applied": true, "snapshot_written": true}

// Events shown as they happen, by kind of process.
var (
	agentEvents = map[string]bool{
		"failover": true, "failback": true, "active_member_changed": true,
		"member_removed_from_rotation": true, "member_added_to_rotation": true,
		"health_check_failed": true, "mcp_server_degraded": true, "mcp_server_recovered": true,
		"circuit_opened": true, "circuit_half_open": true, "circuit_closed": true,
		"retry_budget_exhausted": true, "snapshot_applied": true, "control_plane_disconnected": true,
	}
	controlPlaneEvents = map[string]bool{
		"member_out_of_rotation": true, "member_in_rotation": true, "active_member_changed": true,
		"circuit_opened": true, "circuit_closed": true, "snapshot_written": true, "agent_disconnected": true,
	}
)

func newLogbook(label string, out *console, shown map[string]bool, all bool) *logbook {
	return &logbook{label: label, out: out, shown: shown, all: all, probeFailures: map[string]int{}}
}

// goLive starts printing the live-only events, and each line's time
// relative to start (when the traffic started).
func (l *logbook) goLive(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start = start
}

// mute stops printing (the events are still kept): the demo's own
// shutdown is not news.
func (l *logbook) mute() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = nil
}

func (l *logbook) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		// proc's Echo prefixes each line with "  [name] ".
		if _, rest, ok := strings.Cut(line, "] "); ok {
			line = rest
		}
		ev, ok := parseLogLine(line)
		if ok {
			l.events = append(l.events, ev)
		}
		l.show(line, ev, ok)
	}
	return len(p), nil
}

func (l *logbook) show(line string, ev logEvent, parsed bool) {
	if l.out == nil {
		return
	}
	if !parsed {
		if l.all {
			l.out.say("  %s", shorten(l.label+": "+line))
		}
		return
	}
	live := !l.start.IsZero()
	if !l.all {
		if l.quiet(ev) {
			return
		}
		interesting := l.shown[ev.Name] && (live || !liveOnly[ev.Name])
		if !interesting && ev.Level != "WARN" && ev.Level != "ERROR" {
			return
		}
	}
	when := ""
	if live && !ev.At.IsZero() {
		when = fmt.Sprintf("t=%.3fs", ev.At.Sub(l.start).Seconds())
	}
	m := slogLine.FindStringSubmatch(line)
	text := strings.TrimSpace(fmt.Sprintf("%-4s %s %s", m[2], m[3], m[4]))
	l.out.say("  %-9s %-13s %s", when, l.label, shorten(text))
}

// quiet reports whether to hide a repeated health_check_failed line,
// announcing the first one it hides.
func (l *logbook) quiet(ev logEvent) bool {
	member := ev.Attrs["mcp_server"]
	switch {
	case member == "":
		return false
	case ev.Name == "mcp_server_recovered" || ev.Name == "mcp_server_ready":
		delete(l.probeFailures, member)
	case ev.Name == "health_check_failed":
		l.probeFailures[member]++
		n := l.probeFailures[member]
		if n == maxProbeFailuresShown+1 {
			l.out.say("  %-9s %-13s (further health_check_failed lines for %s are not shown)", "", l.label, member)
		}
		return n > maxProbeFailuresShown
	}
	return false
}

// find returns the first event for which match holds.
func (l *logbook) find(match func(logEvent) bool) (logEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if match(ev) {
			return ev, true
		}
	}
	return logEvent{}, false
}

// each calls fn for every event so far, in log order.
func (l *logbook) each(fn func(logEvent)) {
	l.mu.Lock()
	events := l.events[:len(l.events):len(l.events)]
	l.mu.Unlock()
	for _, ev := range events {
		fn(ev)
	}
}

// count returns how many events match.
func (l *logbook) count(match func(logEvent) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if match(ev) {
			n++
		}
	}
	return n
}

// is matches the event name and every attribute given as key, value pairs.
func is(name string, kv ...string) func(logEvent) bool {
	return func(ev logEvent) bool {
		if ev.Name != name {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if ev.Attrs[kv[i]] != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// shorten cuts a line to maxLogLine characters. An error attribute keeps
// its end, where the cause is ("connect: connection refused").
func shorten(line string) string {
	if len(line) <= maxLogLine {
		return line
	}
	const key = ` error="`
	if i := strings.Index(line, key); i >= 0 {
		head, val := line[:i+len(key)], line[i+len(key):]
		if keep := maxLogLine - len(head) - 3; keep >= 20 {
			tail := val[len(val)-keep:]
			if j := strings.IndexByte(tail, ' '); j >= 0 && j < len(tail)/2 {
				tail = tail[j+1:] // start at a word
			}
			return head + "..." + tail
		}
	}
	return line[:maxLogLine-3] + "..."
}
