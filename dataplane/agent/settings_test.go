package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSettingsValidate(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("mcp_servers: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func(mod func(*Settings)) Settings {
		s := Settings{ConfigPath: fleet, Host: "127.0.0.1", Port: 8000, LogLevel: "info", Limits: DefaultLimits}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	tests := []struct {
		name string
		s    Settings
		// want lists substrings of the error; empty means valid.
		want []string
	}{
		{name: "defaults", s: ok(nil)},
		{name: "stdio ignores the host", s: ok(func(s *Settings) { s.Host = "0.0.0.0" })},
		{name: "http on loopback", s: ok(func(s *Settings) { s.HTTP = true })},
		{name: "http on localhost", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "localhost" })},
		{name: "http on ::1", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "::1" })},
		{name: "http on 127.0.0.2", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "127.0.0.2" })},
		{name: "port 0 picks one", s: ok(func(s *Settings) { s.Port = 0 })},
		{name: "port 65535", s: ok(func(s *Settings) { s.Port = 65535 })},
		{name: "log levels any case", s: ok(func(s *Settings) { s.LogLevel = "WARNING" })},
		{name: "debug", s: ok(func(s *Settings) { s.LogLevel = "debug" })},
		{name: "error", s: ok(func(s *Settings) { s.LogLevel = "error" })},
		{
			name: "all interfaces without a token",
			s:    ok(func(s *Settings) { s.HTTP, s.Host = true, "0.0.0.0" }),
			want: []string{"refusing", "0.0.0.0:8000", "--auth-token-file", "--unsafe-no-auth", "--host 127.0.0.1"},
		},
		{
			name: "empty host binds every interface",
			s:    ok(func(s *Settings) { s.HTTP, s.Host = true, "" }),
			want: []string{"--auth-token-file", "--unsafe-no-auth"},
		},
		{name: "ipv6 any without a token", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "::" }), want: []string{"[::]:8000", "--auth-token-file"}},
		{name: "a LAN address without a token", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "192.168.1.10" }), want: []string{"--unsafe-no-auth"}},
		{name: "a host name without a token", s: ok(func(s *Settings) { s.HTTP, s.Host = true, "agent.example" }), want: []string{"--auth-token-file"}},
		{name: "all interfaces with a token", s: ok(func(s *Settings) { s.HTTP, s.Host, s.AuthTokenFile = true, "0.0.0.0", "/run/token" })},
		{name: "all interfaces, unsafe", s: ok(func(s *Settings) { s.HTTP, s.Host, s.UnsafeNoAuth = true, "0.0.0.0", true })},
		{name: "bad log level", s: ok(func(s *Settings) { s.LogLevel = "verbose" }), want: []string{`--log-level "verbose"`, "debug, info, warn or error"}},
		{name: "empty log level", s: ok(func(s *Settings) { s.LogLevel = "" }), want: []string{"--log-level"}},
		{name: "negative port", s: ok(func(s *Settings) { s.Port = -1 }), want: []string{"--port -1", "between 0 and 65535"}},
		{name: "port too big", s: ok(func(s *Settings) { s.Port = 65536 }), want: []string{"--port 65536"}},
		{name: "rate limit on", s: ok(func(s *Settings) { s.HTTP, s.Limits.RateLimit = true, 5 })},
		{name: "zero header timeout", s: ok(func(s *Settings) { s.HTTP, s.Limits.ReadHeaderTimeout = true, 0 }),
			want: []string{"--read-header-timeout 0s", "positive duration"}},
		{name: "negative body timeout", s: ok(func(s *Settings) { s.HTTP, s.Limits.BodyTimeout = true, -time.Second }),
			want: []string{"--body-timeout -1s"}},
		{name: "no connections", s: ok(func(s *Settings) { s.HTTP, s.Limits.MaxConnections = true, 0 }),
			want: []string{"--max-connections 0", "at least 1"}},
		{name: "tiny request limit", s: ok(func(s *Settings) { s.HTTP, s.Limits.MaxRequestBytes = true, 10 }),
			want: []string{"--max-request-bytes 10", "at least 1024"}},
		{name: "tiny response limit", s: ok(func(s *Settings) { s.HTTP, s.Limits.MaxResponseBytes = true, 0 }),
			want: []string{"--max-response-bytes 0"}},
		{name: "negative rate", s: ok(func(s *Settings) { s.HTTP, s.Limits.RateLimit = true, -1 }),
			want: []string{"--rate-limit -1", "0 (off)"}},
		{name: "rate without burst", s: ok(func(s *Settings) { s.HTTP, s.Limits.RateLimit, s.Limits.RateBurst = true, 5, 0 }),
			want: []string{"--rate-burst 0"}},
		{name: "limits unchecked for stdio", s: ok(func(s *Settings) { s.Limits.MaxConnections = 0 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestSettingsValidateConfigPath covers finding the fleet file when none is named.
func TestSettingsValidateConfigPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Chdir(t.TempDir())

	s := Settings{LogLevel: "info"}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() with no fleet file anywhere = nil")
	}
	for _, w := range []string{"--config", "MCP_CONFIG", "config.yaml", filepath.Join(home, ".config", "mcp-hangar", "config.yaml")} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %q, want it to contain %q", err, w)
		}
	}

	// The user's file is found when the working directory has none.
	user := filepath.Join(home, ".config", "mcp-hangar", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(user), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(user, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = Settings{LogLevel: "info"}
	if err := s.Validate(); err != nil || s.ConfigPath != user {
		t.Fatalf("Validate() = %v, ConfigPath %q; want nil, %q", err, s.ConfigPath, user)
	}

	// ./config.yaml comes first.
	if err := os.WriteFile("config.yaml", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = Settings{LogLevel: "info"}
	if err := s.Validate(); err != nil || s.ConfigPath != "config.yaml" {
		t.Fatalf("Validate() = %v, ConfigPath %q; want nil, config.yaml", err, s.ConfigPath)
	}

	// A named file is kept as given, even if missing (loading reports that).
	s = Settings{LogLevel: "info", ConfigPath: "/nonexistent/fleet.yaml"}
	if err := s.Validate(); err != nil || s.ConfigPath != "/nonexistent/fleet.yaml" {
		t.Fatalf("Validate() = %v, ConfigPath %q", err, s.ConfigPath)
	}
}

// TestLimitsFromEnvironment checks each limit's HANGAR_* variable and flag.
func TestLimitsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("mcp_servers: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HANGAR_BODY_TIMEOUT", "3s")
	t.Setenv("HANGAR_MAX_CONNECTIONS", "64")
	t.Setenv("HANGAR_RATE_LIMIT", "2.5")
	var got Settings
	cmd := newRootWith(nil, io.Discard, io.Discard, func(_ context.Context, s Settings) error {
		got = s
		return nil
	})
	cmd.SetArgs([]string{"--config", fleet, "serve", "--http", "--max-request-bytes", "2048"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := DefaultLimits
	want.BodyTimeout, want.MaxConnections, want.RateLimit, want.MaxRequestBytes = 3*time.Second, 64, 2.5, 2048
	if got.Limits != want {
		t.Errorf("limits = %+v, want %+v", got.Limits, want)
	}
}

func TestLimitsFromBadEnvironment(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("mcp_servers: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HANGAR_MAX_CONNECTIONS", "lots")
	t.Setenv("HANGAR_BODY_TIMEOUT", "30")
	cmd := newRootWith(nil, io.Discard, io.Discard, func(context.Context, Settings) error {
		t.Error("served with bad limits")
		return nil
	})
	cmd.SetArgs([]string{"--config", fleet, "serve", "--http"})
	err := cmd.ExecuteContext(t.Context())
	if err == nil {
		t.Fatal("bad HANGAR_* limits accepted")
	}
	for _, w := range []string{`--max-connections (or HANGAR_MAX_CONNECTIONS) "lots": not a whole number`,
		`--body-timeout (or HANGAR_BODY_TIMEOUT) "30": not a duration such as 30s`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestSettingsFileAndEnvironment: every flag can come from --settings (keys
// are flag names) or from HANGAR_<FLAG>; a flag beats the environment,
// which beats the file.
func TestSettingsFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	settings := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(fleet, []byte("mcp_servers: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := "config: " + fleet + "\nport: 9001\ncp-ca-file: /file/ca.pem\ncp-token-file: /file/token\njson-logs: true\n"
	if err := os.WriteFile(settings, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HANGAR_CP_TOKEN_FILE", "/env/token")
	t.Setenv("HANGAR_CP_INSECURE", "true")
	var got Settings
	cmd := newRootWith(nil, io.Discard, io.Discard, func(_ context.Context, s Settings) error {
		got = s
		return nil
	})
	cmd.SetArgs([]string{"serve", "--settings", settings, "--port", "9002"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got.ConfigPath != fleet || got.Port != 9002 || got.CPCAFile != "/file/ca.pem" || got.CPTokenFile != "/env/token" ||
		!got.CPInsecure || !got.JSONLogs {
		t.Errorf("settings = config %q port %d ca %q token %q insecure %v json %v; want the file's, the environment's over it, the flag's over both",
			got.ConfigPath, got.Port, got.CPCAFile, got.CPTokenFile, got.CPInsecure, got.JSONLogs)
	}

	cmd = newRootWith(nil, io.Discard, io.Discard, func(context.Context, Settings) error { return nil })
	cmd.SetArgs([]string{"serve", "--settings", filepath.Join(dir, "missing.yaml")})
	if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "read --settings") {
		t.Errorf("a missing settings file: %v, want an error naming --settings", err)
	}
}

// --max-request-bytes is the front door's limit too: the gateway gets it.
func TestGatewayOptionsCarryTheRequestLimit(t *testing.T) {
	var s Settings
	s.Limits.MaxRequestBytes = 8 << 20
	if got := gatewayOptions(s).MaxRequestBytes; got != 8<<20 {
		t.Fatalf("gateway request limit %d, want --max-request-bytes %d", got, 8<<20)
	}
}
