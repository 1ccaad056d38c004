package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnits checks each unit's hardening and command line, and runs
// `systemd-analyze verify` on it where systemd is installed (with the
// ExecStart binary replaced by a stand-in, since none is installed here).
func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 2 {
		t.Fatalf("want the agent's and the control plane's units, found %v", units)
	}
	analyze, _ := exec.LookPath("systemd-analyze")
	dir := t.TempDir()
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
			"PrivateTmp=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "RestrictAddressFamilies=", "ExecReload=/bin/kill -HUP $MAINPID"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q", u, strings.TrimSpace(want))
			}
		}
		m := regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/(\S+)\s*(.*)$`).FindStringSubmatch(s)
		if m == nil {
			t.Errorf("%s: no ExecStart=/usr/local/bin/…", u)
			continue
		}
		checkArgs(t, u, m[1], strings.Fields(m[2]))
		if analyze == "" {
			continue
		}
		stand := filepath.Join(dir, "bin", m[1])
		if err := os.MkdirAll(filepath.Dir(stand), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(s, "/usr/local/bin/", filepath.Join(dir, "bin")+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	if analyze == "" {
		t.Log("systemd-analyze not installed: the units' syntax was not verified")
	}
	settings, err := os.ReadFile("systemd/controlplane.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(settings), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		checkArgs(t, "systemd/controlplane.yaml key "+k, "hangar-controlplane", []string{"serve", "--" + k + "=" + strings.TrimSpace(v)})
	}
}
