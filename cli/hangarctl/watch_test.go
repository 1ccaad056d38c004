package hangarctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/testutil"
)

// runUntil runs hangarctl in the background until its stdout holds want
// occurrences of marker, then stops it as Ctrl-C would, and returns the
// result.
func runUntil(t *testing.T, marker string, want int, args ...string) result {
	t.Helper()
	return runUntilThen(t, marker, want, nil, args...)
}

// runUntilThen is runUntil that, if midway is set, first waits for
// midway.n markers and calls midway.fn.
func runUntilThen(t *testing.T, marker string, want int, midway *step, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.LogBuffer
	done := make(chan int)
	go func() { done <- Run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
	deadline := time.After(10 * time.Second)
	for n := strings.Count(stdout.String(), marker); n < want; n = strings.Count(stdout.String(), marker) {
		if midway != nil && n >= midway.n {
			midway.fn()
			midway = nil
		}
		select {
		case code := <-done:
			t.Fatalf("hangarctl ended early with exit %d; stdout:\n%s\nstderr: %s", code, stdout.String(), stderr.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no %d× %q within 10s; stdout:\n%s\nstderr: %s", want, marker, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	code := <-done
	return result{code, stdout.String(), stderr.String()}
}

// step is something a test does once the output holds n markers.
type step struct {
	n  int
	fn func()
}

// TestWatchRedrawsPerEvent checks that --watch draws once, then once per
// event of the (group-filtered) stream: two events, three frames, separated
// by "---" lines since stdout is not a terminal; each frame is fetched
// anew; Ctrl-C ends it with exit 0.
func TestWatchRedrawsPerEvent(t *testing.T) {
	f, addr := startFake(t)
	f.live = liveEvents
	r := runUntil(t, "Group: ", 3, "--control-plane", addr, "group", "status", "my-mcp-group", "--watch")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q after Ctrl-C: want 0 and nothing", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "Group: "); n != 3 {
		t.Errorf("drew %d frames for 2 events, want 3", n)
	}
	golden(t, "group_status_watch.table", r.stdout)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The stream starts after the group's newest event (seq 2), so past
	// events cause no redraw.
	if len(f.follows) != 1 || f.follows[0].GetAfterSeq() != 2 || f.follows[0].GetGroup() != "my-mcp-group" {
		t.Errorf("follow requests %v, want one for group my-mcp-group after seq 2", f.follows)
	}
}

// TestWatchJSONFrames checks that JSON frames follow each other with
// nothing between them, and that events of every group count for lists.
func TestWatchJSONFrames(t *testing.T) {
	f, addr := startFake(t)
	f.live = liveEvents
	r := runUntil(t, `"groups": [`, 3, "--control-plane", addr, "-o", "json", "group", "list", "-w")
	if r.code != 0 || strings.Count(r.stdout, `"groups": [`) != 3 || strings.Contains(r.stdout, "---") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant 3 JSON frames, nothing between them", r.code, r.stderr, r.stdout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.follows) != 1 || f.follows[0].GetAfterSeq() != 3 || f.follows[0].GetGroup() != "" {
		t.Errorf("follow requests %v, want one for every group after seq 3", f.follows)
	}
}

// TestEventsFollow checks that --follow prints the past events, then new
// ones as they come, until Ctrl-C (exit 0).
func TestEventsFollow(t *testing.T) {
	f, addr := startFake(t)
	f.live = liveEvents
	r := runUntil(t, "\n", 5, "--control-plane", addr, "events", "--follow")
	want := []string{"config_applied", "member_out_of_rotation", "circuit_opened", "member_in_rotation", "failover"}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != len(want) {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant %d event lines", r.code, r.stderr, r.stdout, len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], " "+w+" ") && !strings.Contains(lines[i], " "+w+":") {
			t.Errorf("line %d = %q, want event %s", i, lines[i], w)
		}
	}
}

// TestEventsFollowFailover checks that a follow stream broken by its
// replica going away resumes on the next endpoint after the last event
// received: no event lost, none repeated.
func TestEventsFollowFailover(t *testing.T) {
	first, addr1 := startFake(t)
	first.live = liveEvents[:1]
	second, addr2 := startFake(t)
	second.live = liveEvents
	r := runUntilThen(t, "\n", 5, &step{4, first.stop}, "--control-plane", addr1+","+addr2, "events", "-f")
	if r.code != 0 || strings.Count(r.stdout, "member_in_rotation") != 1 || !strings.Contains(r.stdout, " failover ") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant events 1-4 from the first endpoint and 5 from the second", r.code, r.stderr, r.stdout)
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	if len(second.follows) != 1 || second.follows[0].GetAfterSeq() != 4 {
		t.Errorf("second endpoint got %v, want one stream after seq 4", second.follows)
	}
}
