package mathserver

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	defaults := config{host: "127.0.0.1", port: "8080", transport: "http", name: DefaultName,
		faults: Faults{FailRate: 1, FailMode: FailRPC}}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*config)
	}{
		{name: "defaults", want: func(*config) {}},
		{
			name: "env",
			env:  map[string]string{"MCP_HOST": "0.0.0.0", "MCP_PORT": "9000", "MCP_TRANSPORT": "stdio", "MCP_NAME": "my-mcp"},
			want: func(c *config) { c.host, c.port, c.transport, c.name = "0.0.0.0", "9000", "stdio", "my-mcp" },
		},
		{
			name: "flags override env",
			args: []string{"--host", "::1", "--port", "0", "--transport", "http", "--name", "b", "--stateless"},
			env:  map[string]string{"MCP_HOST": "0.0.0.0", "MCP_PORT": "9000", "MCP_TRANSPORT": "stdio", "MCP_NAME": "a"},
			want: func(c *config) { c.host, c.port, c.transport, c.name, c.stateless = "::1", "0", "http", "b", true },
		},
		{
			name: "faults",
			args: []string{"--fail-tools", "add, divide", "--fail-rate", "0.8", "--fail-mode", "tool",
				"--latency", "50ms", "--hang", "--fail-list", "--seed", "7", "--admin-addr", "127.0.0.1:0"},
			want: func(c *config) {
				c.seed, c.adminAddr = 7, "127.0.0.1:0"
				c.faults = Faults{FailTools: []string{"add", "divide"}, FailRate: 0.8, FailMode: FailTool,
					Latency: 50 * time.Millisecond, Hang: true, FailList: true}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args, lookup(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"bad port", []string{"--port", "http"}, nil, `port "http" (--port or MCP_PORT): want a number from 0 to 65535`},
		{"env port out of range", nil, map[string]string{"MCP_PORT": "70000"}, `port "70000"`},
		{"transport", []string{"--transport", "grpc"}, nil, `transport "grpc" (--transport or MCP_TRANSPORT): want http or stdio`},
		{"unknown tool", []string{"--fail-tools", "add,sqrt"}, nil, `fail_tools: unknown tool "sqrt"`},
		{"rate out of range", []string{"--fail-tools", "add", "--fail-rate", "1.5"}, nil, "fail_rate: 1.5 is out of range"},
		{"rate without tools", []string{"--fail-rate", "0.5"}, nil, "--fail-rate has no effect without --fail-tools"},
		{"mode", []string{"--fail-tools", "*", "--fail-mode", "http"}, nil, `fail_mode: "http" is not a mode`},
		{"latency", []string{"--latency", "50"}, nil, `invalid value "50" for flag -latency`},
		{"positional", []string{"serve"}, nil, `unexpected argument "serve"`},
		{"unknown flag", []string{"--fail-tool", "add"}, nil, "flag provided but not defined: -fail-tool"},
		{"empty name", []string{"--name", ""}, nil, "--name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, lookup(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseArgs(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
