package admin

import (
	"fmt"
	"strings"
)

// diffContext is how many unchanged lines surround each change.
const diffContext = 3

// maxDiffCells bounds the work of the line matching (the product of the
// changed spans' lengths, after the common head and tail are set aside);
// beyond it, the changed span is shown as removed and added whole.
const maxDiffCells = 1 << 22

// unifiedDiff returns a unified diff (as diff -u) from a to b, with the
// given file labels; "" when they are equal.
func unifiedDiff(fromName, toName string, a, b []byte) string {
	x, y := splitLines(string(a)), splitLines(string(b))
	ops := diffLines(x, y)
	hunks := groupHunks(ops)
	if len(hunks) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
	for _, h := range hunks {
		h.write(&sb)
	}
	return sb.String()
}

// splitLines splits s after each '\n'; a last line without one keeps none.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffOp is one line of the edit script: ' ' kept, '-' removed, '+' added.
type diffOp struct {
	kind byte
	line string
	// ax and by are the 1-based line numbers in a and b the op is at.
	ax, by int
}

// diffLines returns an edit script from x to y: a longest common
// subsequence of lines, kept, the rest removed or added.
func diffLines(x, y []string) []diffOp {
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	mx, my := x[head:len(x)-tail], y[head:len(y)-tail]
	var ops []diffOp
	ai, bi := 0, 0
	emit := func(kind byte, line string) {
		ops = append(ops, diffOp{kind: kind, line: line, ax: ai + 1, by: bi + 1})
		if kind != '+' {
			ai++
		}
		if kind != '-' {
			bi++
		}
	}
	for _, l := range x[:head] {
		emit(' ', l)
	}
	for _, op := range lcsScript(mx, my) {
		emit(op.kind, op.line)
	}
	for _, l := range x[len(x)-tail:] {
		emit(' ', l)
	}
	return ops
}

// lcsScript is the edit script of x to y by dynamic programming over the
// longest common subsequence, or "remove x, add y" when that is too big.
func lcsScript(x, y []string) []diffOp {
	var ops []diffOp
	if len(x)*len(y) > maxDiffCells {
		for _, l := range x {
			ops = append(ops, diffOp{kind: '-', line: l})
		}
		for _, l := range y {
			ops = append(ops, diffOp{kind: '+', line: l})
		}
		return ops
	}
	// n[i][j] is the LCS length of x[i:] and y[j:].
	w := len(y) + 1
	n := make([]int32, (len(x)+1)*w)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				n[i*w+j] = n[(i+1)*w+j+1] + 1
			} else {
				n[i*w+j] = max(n[(i+1)*w+j], n[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, diffOp{kind: ' ', line: x[i]})
			i, j = i+1, j+1
		case j == len(y) || (i < len(x) && n[(i+1)*w+j] >= n[i*w+j+1]):
			ops = append(ops, diffOp{kind: '-', line: x[i]})
			i++
		default:
			ops = append(ops, diffOp{kind: '+', line: y[j]})
			j++
		}
	}
	return ops
}

// hunk is a run of changes with their context.
type hunk struct{ ops []diffOp }

// groupHunks cuts the script into hunks: changes closer than twice the
// context share one.
func groupHunks(ops []diffOp) []hunk {
	var hunks []hunk
	start, end := -1, -1 // the current hunk's ops[start:end]
	for i, op := range ops {
		if op.kind == ' ' {
			continue
		}
		lo, hi := max(0, i-diffContext), min(len(ops), i+1+diffContext)
		if start >= 0 && lo <= end {
			end = max(end, hi)
			continue
		}
		if start >= 0 {
			hunks = append(hunks, hunk{ops[start:end]})
		}
		start, end = lo, hi
	}
	if start >= 0 {
		hunks = append(hunks, hunk{ops[start:end]})
	}
	return hunks
}

func (h hunk) write(sb *strings.Builder) {
	var na, nb int
	for _, op := range h.ops {
		if op.kind != '+' {
			na++
		}
		if op.kind != '-' {
			nb++
		}
	}
	// An empty range starts at the line before it, as diff -u writes it.
	a0, b0 := h.ops[0].ax, h.ops[0].by
	if na == 0 {
		a0--
	}
	if nb == 0 {
		b0--
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(a0, na), hunkRange(b0, nb))
	for _, op := range h.ops {
		sb.WriteByte(op.kind)
		sb.WriteString(op.line)
		if !strings.HasSuffix(op.line, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
