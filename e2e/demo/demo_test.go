package demo

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogbookShows(t *testing.T) {
	const ts = "time=2026-01-02T03:04:05.000Z "
	refused := `error="calling \"tools/list\": sending \"tools/list\": rejected by transport: Post \"http://127.0.0.1:4000/mcp\": dial tcp 127.0.0.1:4000: connect: connection refused"`
	tests := []struct {
		name  string
		lines []string
		want  []string // substrings of the shown lines, in order
	}{
		{
			name:  "failover events shown without the timestamp",
			lines: []string{ts + "level=INFO msg=failover group=g from=my-mcp to=my-mcp-backup tool=add reason=connect_error"},
			want:  []string{"agent A       INFO failover group=g from=my-mcp to=my-mcp-backup tool=add reason=connect_error"},
		},
		{
			name:  "routine lines hidden",
			lines: []string{ts + "level=INFO msg=http_server_started addr=127.0.0.1:1"},
		},
		{
			name:  "snapshots hidden until the traffic runs",
			lines: []string{ts + "level=INFO msg=snapshot_applied version=8 nonce=agent-a-8"},
		},
		{
			name:  "errors shown",
			lines: []string{ts + "level=ERROR msg=something_broke what=x"},
			want:  []string{"ERROR something_broke what=x"},
		},
		{
			name:  "long error keeps its cause",
			lines: []string{ts + "level=WARN msg=health_check_failed mcp_server=my-mcp consecutive_failures=1 " + refused},
			want:  []string{`error="...dial tcp 127.0.0.1:4000: connect: connection refused"`},
		},
		{
			name: "repeated probe failures collapsed until recovery",
			lines: []string{
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=1",
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=2",
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=3",
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=4",
				ts + "level=INFO msg=mcp_server_recovered mcp_server=a from=initializing",
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=1",
			},
			want: []string{"failures=1", "failures=2", "further health_check_failed lines for a", "mcp_server_recovered", "failures=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := newLogbook("agent A", &console{w: &out}, agentEvents, false)
			for _, l := range tt.lines {
				// proc's Echo writes each line with a "  [name] " prefix.
				if _, err := io.WriteString(f, "  [hangar-agent] "+l+"\n"); err != nil {
					t.Fatal(err)
				}
			}
			got := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				got = nil
			}
			if len(got) != len(tt.want) {
				t.Fatalf("shown %d lines, want %d:\n%s", len(got), len(tt.want), out.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, got[i], w)
				}
				if len(strings.TrimSpace(got[i])) > maxLogLine+len("          agent A       ") {
					t.Errorf("line %d is %d characters long", i, len(got[i]))
				}
			}
		})
	}
}

func TestLogbookRecords(t *testing.T) {
	l := newLogbook("control plane", nil, controlPlaneEvents, false)
	lines := []string{
		"not a log line",
		`time=2026-01-02T03:04:05.123Z level=INFO msg=snapshot_written version=9 agents=2`,
		`time=2026-01-02T03:04:05.120Z level=INFO msg=member_out_of_rotation group=my-mcp-group member=my-mcp message="out of global rotation: traffic_quorum (snapshot 9)"`,
	}
	for _, line := range lines {
		if _, err := io.WriteString(l, "  [hangar-controlplane] "+line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	ev, ok := l.find(is("member_out_of_rotation", "member", primaryName))
	if !ok {
		t.Fatal("member_out_of_rotation not found")
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 120e6, time.UTC); !ev.At.Equal(want) {
		t.Errorf("At = %v, want %v", ev.At, want)
	}
	if v, err := snapshotVersion(ev); err != nil || v != 9 {
		t.Errorf("snapshotVersion = %d, %v; want 9 from the quoted message %q", v, err, ev.Attrs["message"])
	}
	if _, ok := l.find(is("member_out_of_rotation", "member", backupName)); ok {
		t.Error("found an event for a member that is not in the log")
	}
	if n := l.count(is("snapshot_written")); n != 1 {
		t.Errorf("count(snapshot_written) = %d, want 1", n)
	}
}

func TestTriedPrimary(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := newTraffic("agent B", nil, 2, 0, &console{w: io.Discard})
	tr.calls = []call{
		{sent: t0.Add(-time.Millisecond), done: true, member: backupName, attempts: 2}, // before the window
		{sent: t0, done: true, member: backupName, attempts: 1},                        // backup only
		{sent: t0.Add(time.Second), done: true, member: backupName, attempts: 2},       // tried the primary first
		{sent: t0.Add(2 * time.Second), done: true, member: primaryName, attempts: 1},  // served by the primary
		{sent: t0.Add(3 * time.Second), member: primaryName, attempts: 1},              // interrupted: not counted
		{sent: t0.Add(4 * time.Second), done: true, member: primaryName, attempts: 1},  // after the window
	}
	tried, sent := tr.triedPrimary(t0, t0.Add(4*time.Second))
	if tried != 2 || sent != 3 {
		t.Errorf("triedPrimary = %d of %d sent, want 2 of 3", tried, sent)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing binaries", []string{"-bin", t.TempDir()}, "build it with 'make build'"},
		{"rate out of range", []string{"-rate", "0"}, "want 1 to 200"},
		{"B's rate out of range", []string{"-rate-b", "201"}, "-rate-b 201: want 1 to 200"},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestHangarctlFailureFailsTheDemo(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'hangarctl: no control-plane endpoint answered: 127.0.0.1:1' >&2\nexit 2\n"
	if err := os.WriteFile(filepath.Join(bin, "hangarctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &demo{opts: options{bin: bin}, out: &console{w: &out}, cp: &controlPlane{grpc: "127.0.0.1:1"}}
	err := d.groupStatusCtl(t.Context(), "")
	if err == nil {
		t.Fatal("groupStatusCtl succeeded with a hangarctl that exits 2")
	}
	want := "hangarctl group status my-mcp-group exited with status 2: hangarctl: no control-plane endpoint answered"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want it to start with %q", err, want)
	}
	for _, w := range []string{"$ hangarctl --control-plane 127.0.0.1:1 group status my-mcp-group", "      hangarctl: no control-plane endpoint answered"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output does not show %q:\n%s", w, out.String())
		}
	}
}
