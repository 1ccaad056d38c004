package admin

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// diffContext is how many unchanged lines surround each change.
const diffContext = 3

// unifiedDiff returns a unified diff (as diff -u) from a to b, with the
// given file labels; "" when they are equal. A last line without a newline
// is marked as GNU diff marks it.
func unifiedDiff(fromName, toName string, a, b []byte) string {
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(string(a)), B: splitLines(string(b)),
		FromFile: fromName, ToFile: toName, Context: diffContext,
	})
	if err != nil { // it writes to a strings.Builder, which does not fail
		return ""
	}
	return out
}

// splitLines splits s after each '\n'. A last line without one gets GNU
// diff's "\ No newline at end of file" marker as part of the line, so that
// it differs from the same text with a newline and prints like diff -u.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	last := len(lines) - 1
	if lines[last] == "" {
		return lines[:last]
	}
	lines[last] += "\n\\ No newline at end of file\n"
	return lines
}
