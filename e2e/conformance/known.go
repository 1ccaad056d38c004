package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Modes, in the order they run.
const (
	ModeDirect   = "direct"    // the conformance server itself
	ModeOne      = "one"       // through a front_door group of one member
	ModePair     = "pair"      // through a priority pair
	ModePairKill = "pair-kill" // through the pair, primary killed halfway through
)

// AllModes lists every mode.
var AllModes = []string{ModeDirect, ModeOne, ModePair, ModePairKill}

// Known is the baseline: the scenarios known to fail, by mode.
type Known map[string]map[string]bool

// ParseKnown reads a known-failures file: one "MODE SCENARIO" per line,
// '#' starts a comment. Errors name file:line.
func ParseKnown(path string) (Known, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read known failures: %w", err)
	}
	known := Known{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want 'MODE SCENARIO', got %q", path, n, sc.Text())
		}
		mode, scenario := fields[0], fields[1]
		if !slices.Contains(AllModes, mode) {
			return nil, fmt.Errorf("%s:%d: unknown mode %q (modes: %s)", path, n, mode, strings.Join(AllModes, ", "))
		}
		if mode == ModeDirect {
			return nil, fmt.Errorf("%s:%d: the direct mode must pass every scenario; it has no known failures", path, n)
		}
		if known[mode] == nil {
			known[mode] = map[string]bool{}
		}
		if known[mode][scenario] {
			return nil, fmt.Errorf("%s:%d: %s %s is listed twice", path, n, mode, scenario)
		}
		known[mode][scenario] = true
	}
	return known, nil
}

// Verdict compares one mode's results with the baseline.
type Verdict struct {
	Regressions []Result // failed, not known to fail
	Stale       []string // known to fail, but passed (or did not run)
	KnownFailed []string // failed as known
}

// OK reports whether the mode matches its baseline.
func (v Verdict) OK() bool { return len(v.Regressions) == 0 && len(v.Stale) == 0 }

// Compare judges results of mode against known.
func Compare(mode string, results []Result, known Known) Verdict {
	var v Verdict
	ran := map[string]bool{}
	for _, r := range results {
		ran[r.Scenario] = true
		switch {
		case !r.OK() && known[mode][r.Scenario]:
			v.KnownFailed = append(v.KnownFailed, r.Scenario)
		case !r.OK():
			v.Regressions = append(v.Regressions, r)
		case known[mode][r.Scenario]:
			v.Stale = append(v.Stale, r.Scenario)
		}
	}
	for s := range known[mode] {
		if !ran[s] {
			v.Stale = append(v.Stale, s+" (did not run)")
		}
	}
	sort.Strings(v.Stale)
	return v
}

// WriteKnown rewrites the known-failures file at path: its leading comment
// block is kept, the entries become the failures of every agent mode in
// all. It refuses when the direct mode failed (that is never a baseline).
func WriteKnown(path string, all []ModeResult) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read known failures: %w", err)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(line)
	}
	for _, m := range all {
		for _, r := range m.Results {
			if r.OK() {
				continue
			}
			if m.Mode == ModeDirect {
				return fmt.Errorf("direct %s failed: fix the setup before writing a baseline", r.Scenario)
			}
			fmt.Fprintf(&b, "%s %s\n", m.Mode, r.Scenario)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write known failures: %w", err)
	}
	return nil
}
