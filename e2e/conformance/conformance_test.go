package conformance

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadResults(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "server-ping-2026-12-04T16-45-38-222Z", "checks.json"),
		`[{"id":"ping","description":"Server responds to ping","status":"SUCCESS"},{"id":"note","status":"INFO"}]`)
	writeFile(t, filepath.Join(dir, "server-tools-call-sampling-2026-12-04T16-45-39-166Z", "checks.json"),
		`[{"id":"tools-call-sampling","description":"Tool requests LLM sampling","status":"FAILURE","errorMessage":"Server did not request sampling"}]`)
	writeFile(t, filepath.Join(dir, "server-resources-list-2026-12-04T16-45-39-286Z", "checks.json"), `not json`)
	writeFile(t, filepath.Join(dir, "unrelated.txt"), "x")
	got, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Scenario)
	}
	if want := []string{"ping", "resources-list", "tools-call-sampling"}; !slices.Equal(names, want) {
		t.Fatalf("scenarios %v, want %v", names, want)
	}
	if !got[0].OK() || got[0].Passed != 1 {
		t.Errorf("ping: %+v, want passed with 1 check", got[0])
	}
	if got[1].OK() {
		t.Errorf("a scenario with unreadable results passed: %+v", got[1])
	}
	if got[2].OK() || !strings.Contains(got[2].Failures[0], "Server did not request sampling") {
		t.Errorf("sampling: %+v, want failed with the suite's message", got[2])
	}
}

func TestParseKnownErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"# header\none ping extra\n", "known.txt:2: want 'MODE SCENARIO'"},
		{"sideways ping\n", `known.txt:1: unknown mode "sideways"`},
		{"direct ping\n", "known.txt:1: the direct mode must pass every scenario"},
		{"one ping\none ping # again\n", "known.txt:2: one ping is listed twice"},
	} {
		path := filepath.Join(t.TempDir(), "known.txt")
		writeFile(t, path, c.body)
		_, err := ParseKnown(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.body, err, c.want)
		}
	}
}

func TestCompareFindsRegressionsAndStaleEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known.txt")
	writeFile(t, path, "# baseline\none tools-call-sampling\none resources-read-text  # fixed since\none gone-scenario\npair ping\n")
	known, err := ParseKnown(path)
	if err != nil {
		t.Fatal(err)
	}
	results := []Result{
		{Scenario: "ping", Failed: 1},
		{Scenario: "tools-call-sampling", Failed: 1},
		{Scenario: "resources-read-text", Passed: 1},
		{Scenario: "tools-list", Passed: 1},
	}
	v := Compare(ModeOne, results, known)
	if len(v.Regressions) != 1 || v.Regressions[0].Scenario != "ping" {
		t.Errorf("regressions %+v, want ping (failed, not listed for one)", v.Regressions)
	}
	if want := []string{"gone-scenario (did not run)", "resources-read-text"}; !slices.Equal(v.Stale, want) {
		t.Errorf("stale %v, want %v", v.Stale, want)
	}
	if !slices.Equal(v.KnownFailed, []string{"tools-call-sampling"}) || v.OK() {
		t.Errorf("verdict %+v: want sampling known and the verdict not OK", v)
	}
	if v := Compare(ModePair, results[:1], known); !v.OK() {
		t.Errorf("pair with ping failing as listed: %+v, want OK", v)
	}
}

func TestWriteKnownKeepsTheHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known.txt")
	writeFile(t, path, "# header line 1\n# header line 2\none old-entry\n")
	all := []ModeResult{
		{Mode: ModeDirect, Results: []Result{{Scenario: "ping", Passed: 1}}},
		{Mode: ModePair, Results: []Result{{Scenario: "ping", Passed: 1}, {Scenario: "tools-call-sampling", Failed: 1}}},
	}
	if err := WriteKnown(path, all); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := "# header line 1\n# header line 2\npair tools-call-sampling\n"; string(data) != want {
		t.Errorf("rewritten file:\n%s\nwant:\n%s", data, want)
	}
	all[0].Results[0].Passed, all[0].Results[0].Failed = 0, 1
	if err := WriteKnown(path, all); err == nil {
		t.Error("a baseline was written although direct failed")
	}
}

func TestAgentConfigIsAValidFrontDoorPair(t *testing.T) {
	got := agentConfig([]string{"http://127.0.0.1:1/mcp", "http://127.0.0.1:2/mcp"})
	if _, err := fleetfile.Parse("agent.yaml", []byte(got), func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("the agent would refuse its config: %v\n%s", err, got)
	}
	for _, w := range []string{"c1: {mode: remote, endpoint: http://127.0.0.1:1/mcp}", "c2: {mode: remote, endpoint: http://127.0.0.1:2/mcp}",
		"tool_access: {mode: front_door}", "members: [{id: c1, priority: 1}, {id: c2, priority: 2}]"} {
		if !strings.Contains(got, w) {
			t.Errorf("config lacks %q:\n%s", w, got)
		}
	}
}
