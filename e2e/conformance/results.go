// Package conformance runs the official MCP conformance suite's server
// tests against the Go SDK's conformance server directly and through
// hangar-agent's front door (one member, a priority pair, and the pair with
// its primary killed partway through), compares the failures with a
// committed baseline of known failures and prints a table of scores.
// cmd/hangar-conformance (make conformance) is its thin main.
package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Result is one scenario's outcome.
type Result struct {
	Scenario string
	Passed   int      // checks that succeeded
	Failed   int      // checks that failed
	Failures []string // "check: description (error)" of the failed checks
}

// OK reports whether the scenario passed: it ran and no check failed.
func (r Result) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// check is one entry of a scenario's checks.json.
type check struct {
	ID           string `json:"id"`
	Description  string `json:"description"`
	Status       string `json:"status"` // SUCCESS, FAILURE, WARNING, INFO, SKIPPED
	ErrorMessage string `json:"errorMessage"`
}

// resultDir matches the folder the suite writes per scenario.
var resultDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$`)

// ReadResults reads every scenario's checks.json under dir (the suite's
// -o folder). A scenario folder without a readable checks.json counts as
// failed.
func ReadResults(dir string) ([]Result, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read conformance results: %w", err)
	}
	var out []Result
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		out = append(out, readScenario(m[1], filepath.Join(dir, e.Name(), "checks.json")))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scenario < out[j].Scenario })
	return out, nil
}

func readScenario(name, path string) Result {
	r := Result{Scenario: name}
	data, err := os.ReadFile(path)
	var checks []check
	if err == nil {
		err = json.Unmarshal(data, &checks)
	}
	if err != nil {
		r.Failed = 1
		r.Failures = []string{fmt.Sprintf("no results: %v", err)}
		return r
	}
	for _, c := range checks {
		switch c.Status {
		case "SUCCESS":
			r.Passed++
		case "FAILURE":
			r.Failed++
			f := c.ID + ": " + c.Description
			if c.ErrorMessage != "" {
				f += " (" + c.ErrorMessage + ")"
			}
			r.Failures = append(r.Failures, f)
		}
	}
	return r
}
