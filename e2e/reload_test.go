package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestAgentReloadsConfigWithoutRestart: while calls flow, SIGHUP with a
// good fleet file switches the group to the new priorities; a broken file
// is refused with its file:line and the running configuration stays; an
// edit without a signal is picked up by the file watch. No call fails and
// the process never restarts.
func TestAgentReloadsConfigWithoutRestart(t *testing.T) {
	skipShort(t)
	p, b := startMath(t, primary, ""), startMath(t, backup, "")
	path := writeConfig(t, priorityFleet(p, b, 5, ""))
	a := startAgent(t, path)
	cs := a.Connect()
	waitReady(t, cs, primary, backup)
	pid := a.proc.PID()

	var served sync.Map // member → calls
	var calls, failed atomic.Int64
	var lastErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tc := a.Connect()
		for ctx.Err() == nil {
			r, err := callOne(ctx, tc, "my-mcp-group", "add", map[string]any{"a": 1, "b": 2})
			if ctx.Err() != nil {
				return
			}
			calls.Add(1)
			if err != nil || !r.Success {
				failed.Add(1)
				lastErr.Store(fmt.Sprintf("%v %+v", err, r))
				continue
			}
			n, _ := served.LoadOrStore(r.Member, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}()
	servedBy := func(m string) int64 {
		n, ok := served.Load(m)
		if !ok {
			return 0
		}
		return n.(*atomic.Int64).Load()
	}
	eventually(t, 10*time.Second, "calls served by the primary", func() bool { return servedBy(primary) > 5 })

	// A good file and SIGHUP: the backup becomes priority 1.
	swapped := strings.Replace(priorityFleet(p, b, 5, ""), "members: [{id: my-mcp, priority: 1}, {id: my-mcp-backup, priority: 2}]",
		"members: [{id: my-mcp, priority: 2}, {id: my-mcp-backup, priority: 1}]", 1)
	writeOver(t, path, swapped)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.WaitLog(`msg=config_reload_requested path=\S+ by=SIGHUP`, 10*time.Second)
	a.WaitLog(`msg=config_reloaded servers=2 groups=1`, 10*time.Second)
	before := servedBy(backup)
	eventually(t, 10*time.Second, "calls served by the backup after the reload", func() bool { return servedBy(backup) > before+5 })

	// A broken file: refused with file:line, on the watch and on SIGHUP;
	// the backup keeps serving.
	broken := strings.Replace(swapped, "strategy: priority", "strategy: priorty", 1)
	writeOver(t, path, broken)
	want := fmt.Sprintf(`msg=config_reload_refused path=\S+ error="%s:%d: `, regexp.QuoteMeta(path), lineOf(t, broken, "priorty"))
	a.WaitLog(want, 10*time.Second)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the broken file refused again on SIGHUP", func() bool {
		return len(cpMatches(a.Logs(), `(msg=config_reload_refused) path=`)) >= 2
	})
	before = servedBy(backup)
	eventually(t, 10*time.Second, "the backup still serving after the broken file", func() bool { return servedBy(backup) > before+5 })

	// An edit without a signal: the file watch reloads it (the primary is
	// priority 1 again).
	writeOver(t, path, priorityFleet(p, b, 5, ""))
	before = servedBy(primary)
	eventually(t, 10*time.Second, "calls served by the primary after the watched edit", func() bool { return servedBy(primary) > before+5 })

	stop()
	<-done
	if a.proc.Exited() {
		t.Fatalf("the agent exited:\n%s", a.Logs())
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d calls failed during the reloads; last: %v", f, calls.Load(), lastErr.Load())
	}
	t.Logf("%d calls, 0 failed, across two reloads and two refused files", calls.Load())
}

// TestControlPlaneSIGHUPReappliesFleetConfig: SIGHUP makes a replica store
// its --fleet-config again when it changed, refuses a broken one with its
// file:line, and never ends the process.
func TestControlPlaneSIGHUPReappliesFleetConfig(t *testing.T) {
	skipShort(t)
	p, b := startMath(t, primary, ""), startMath(t, backup, "")
	e := cpStartEtcd(t)
	path := writeConfig(t, cpRecipe04(t, p.URL(), b.URL()))
	r := cpStartReplica(t, "r1", e.Endpoint, "--fleet-config", path)
	pid := r.proc.PID()

	good := strings.Replace(readFile(t, path), `description: "Backup MCP server"`, `description: "Backup (reloaded)"`, 1)
	writeOver(t, path, good)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the changed file stored on SIGHUP", func() bool {
		return len(cpMatches(r.Logs(), `msg=fleet_config_applied path=\S+ revision=\d+ (changed=true)`)) >= 2 // start, then SIGHUP
	})

	broken := strings.Replace(good, "strategy: priority", "strategy: priorty", 1)
	writeOver(t, path, broken)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r.WaitLog(fmt.Sprintf(`msg=config_reload_refused path=\S+ error=".*%s:%d: `, regexp.QuoteMeta(path), lineOf(t, broken, "priorty")), 10*time.Second)
	res := runCtl(t, r.GRPC, "config", "get")
	if res.code != 0 || !strings.Contains(res.stdout, "Backup (reloaded)") || strings.Contains(res.stdout, "priorty") {
		t.Fatalf("after the refused file, config get: %s\n%s\nwant the good file", res, res.stdout)
	}
	if r.proc.Exited() {
		t.Fatalf("the replica exited on SIGHUP:\n%s", r.Logs())
	}
	// The etcd client of the external cluster logs through slog, not zap
	// JSON (it logs most on shutdown, while its calls are cancelled).
	_ = r.proc.Stop(10 * time.Second)
	for _, l := range strings.Split(r.Logs(), "\n") {
		if strings.HasPrefix(l, "{") {
			t.Errorf("a log line in another format than the replica's slog text: %s", l)
		}
	}
}

func writeOver(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
