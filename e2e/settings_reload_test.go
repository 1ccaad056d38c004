package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/e2e/proc"
)

// TestSettingsReloadOnSIGHUP: both daemons read their --settings file
// again on SIGHUP. A changed reloadable setting (log-level) applies; a
// changed setting read at startup only is logged as needing a restart and
// keeps its value; a broken file changes nothing and is logged with its
// file:line; the processes keep running and serving.
func TestSettingsReloadOnSIGHUP(t *testing.T) {
	skipShort(t)
	p, b := startMath(t, primary, ""), startMath(t, backup, "")
	dir := t.TempDir()

	// The agent.
	agentSettings := filepath.Join(dir, "agent.yaml")
	install(t, agentSettings, "log-level: info\nmax-sessions: 1000\n")
	ap, err := proc.Start(proc.Spec{Name: "hangar-agent", Path: agentBin, Ready: agentReady,
		Args: []string{"--config", writeConfig(t, priorityFleet(p, b, 5, "")), "serve", "--http", "--port", "0", "--settings", agentSettings}}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{Addr: ap.Ready(), proc: ap, t: t}
	t.Cleanup(func() { cpStopAgent(a) })
	hup := func(pid int) {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	checkSettingsReload(t, agentSettings, "max-sessions", "1000", "500", a.WaitLog, a.Logs, func() { hup(a.proc.PID()) })
	if res, err := callOne(t.Context(), a.Connect(), "my-mcp-group", "add", map[string]any{"a": 1, "b": 2}); err != nil || !res.Success {
		t.Errorf("a call after the reloads: %+v, %v", res, err)
	}

	// The control plane.
	cpSettings := filepath.Join(dir, "cp.yaml")
	install(t, cpSettings, "log-level: info\nelection-ttl: 5s\n")
	r := cpStartReplica(t, "r1", cpStartEtcd(t).Endpoint, "--settings", cpSettings)
	eventually(t, 10*time.Second, "the replica to lead", r.IsLeader)
	checkSettingsReload(t, cpSettings, "election-ttl", "5s", "7s", r.WaitLog, r.Logs, func() { hup(r.proc.PID()) })
	if !r.IsLeader() || r.proc.Exited() {
		t.Error("the replica stopped leading or exited after the reloads")
	}
}

// checkSettingsReload changes log-level (reloadable) and key (read at
// startup only) in the settings file at path, sends SIGHUP, and checks the
// logs; then writes a broken file and checks it is refused with its line.
func checkSettingsReload(t *testing.T, path, key, old, changed string, waitLog func(string, time.Duration) string, logs func() string, hup func()) {
	t.Helper()
	q := regexp.QuoteMeta
	install(t, path, fmt.Sprintf("log-level: debug\n%s: %s\n", key, changed))
	hup()
	waitLog(`msg=settings_applied path=`+q(path)+` key=log-level old=info new=debug`, 10*time.Second)
	waitLog(`level=WARN msg=settings_restart_required path=`+q(path)+` key=`+key+` running=\S*`+q(strings.TrimSuffix(old, "s"))+`\S* file=\S*`+q(strings.TrimSuffix(changed, "s")), 10*time.Second)

	install(t, path, fmt.Sprintf("log-level: info\n%s: [\n", key))
	applied := strings.Count(logs(), "msg=settings_applied")
	hup()
	waitLog(`level=ERROR msg=settings_reload_refused error="read --settings `+q(path)+`:2: `, 10*time.Second)
	if n := strings.Count(logs(), "msg=settings_applied"); n != applied {
		t.Errorf("a broken settings file applied something:\n%s", logs())
	}
}
