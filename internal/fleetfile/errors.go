package fleetfile

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a fleet file.
type Error struct {
	File string // the source name given to Parse, or the path given to Load
	Line int    // 1-based; 0 when the problem has no line (never for Parse's own errors)
	Path string // key path such as "mcp_servers.my-mcp-group.members[1].id"; "" for the whole file
	Msg  string // what is wrong and, where it helps, what to write instead
}

// Error renders the problem as "file:line: path: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one fleet file, sorted by line. Parse
// returns a non-empty Errors as its error; errors.As recovers it.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As and errors.Is look at each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders errors by line, keeping the order they were found in
// for errors on the same line.
func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b *Error) int { return a.Line - b.Line })
}

// suggest returns the candidate closest to word by edit distance, or "" when
// none is close enough to be a likely misspelling.
func suggest(word string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(2, len(word)/3)
	if bestDist >= 0 && bestDist <= limit && bestDist < len(word) {
		return best
	}
	// A truncated word ("prio" for "priority") is far by edit distance.
	if len(word) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(strings.ToLower(c), strings.ToLower(word)) {
				return c
			}
		}
	}
	return ""
}

// didYouMean formats a suggestion for word, or lists the valid words when
// none is close.
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(candidates) == 0 {
		return ""
	}
	return " (valid: " + strings.Join(candidates, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
