package demo

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestLogFilter(t *testing.T) {
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
			want:  []string{"agent log: INFO failover group=g from=my-mcp to=my-mcp-backup tool=add reason=connect_error"},
		},
		{
			name:  "routine lines hidden",
			lines: []string{ts + "level=INFO msg=http_server_started addr=127.0.0.1:1"},
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
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=5",
				ts + "level=INFO msg=mcp_server_recovered mcp_server=a from=initializing",
				ts + "level=WARN msg=health_check_failed mcp_server=a consecutive_failures=1",
			},
			want: []string{"failures=1", "failures=2", "failures=3", "further health_check_failed lines for a", "mcp_server_recovered", "failures=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := &logFilter{out: &console{w: &out}}
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
				if len(strings.TrimSpace(got[i])) > maxLogLine+len("agent log: ") {
					t.Errorf("line %d is %d characters long", i, len(got[i]))
				}
			}
		})
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
