package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Config safety with hangarctl on real processes: a config that removes a
// group that just carried calls is refused (and the dry run says it would
// be) until --force; a fleet file over the size limit is refused the same
// way by the dry run and by the apply, and nothing changes; a replica
// started later with its --fleet-config does not overwrite the applied
// config.
func TestCtlConfigSafety(t *testing.T) {
	w := startCtlWorld(t, nil)
	orig, rev0 := w.configGet()

	big := writeFile(t, "big.yaml", orig+"# "+strings.Repeat("x", 600<<10)+"\n")
	dry, apply := w.ctl("config", "apply", "-f", big, "--dry-run"), w.ctl("config", "apply", "-f", big)
	const tooBig = "larger than the 524288-byte (512 KiB) limit on a fleet file"
	if dry.code != 1 || !strings.Contains(dry.stderr, tooBig) {
		t.Errorf("oversized config, dry run: want exit 1 saying %q\n%s", tooBig, dry)
	}
	if apply.code != dry.code || apply.stderr != dry.stderr {
		t.Errorf("oversized config: the apply and the dry run disagree\ndry run: %s\napply: %s", dry, apply)
	}
	if now, rev := w.configGet(); now != orig || rev != rev0 {
		t.Fatalf("the oversized config changed the stored one (revision %d → %d)", rev0, rev)
	}

	w.callsOn(0, 5, primary)
	noGroup := writeFile(t, "no-group.yaml", orig[:strings.Index(orig, "  my-mcp-group:")])
	const removed = `group "my-mcp-group" is removed, and it carried calls`
	eventually(t, 15*time.Second, "the dry run to warn about the group's calls", func() bool {
		dry = w.ctl("config", "apply", "-f", noGroup, "--dry-run")
		return strings.Contains(dry.stdout, "would be refused without --force")
	})
	if !strings.Contains(dry.stdout, removed) {
		t.Errorf("dry run: no %q in\n%s", removed, dry)
	}
	res := w.ctl("config", "apply", "-f", noGroup)
	if res.code != 1 || !strings.Contains(res.stderr, removed) || !strings.Contains(res.stderr, "--force") {
		t.Errorf("removing a busy group without --force: want exit 1 naming it and --force\n%s", res)
	}
	if now, rev := w.configGet(); now != orig || rev != rev0 {
		t.Fatalf("a refused apply changed the stored config (revision %d → %d)", rev0, rev)
	}
	res = w.ctl("config", "apply", "-f", noGroup, "--force")
	if res.code != 0 || !strings.Contains(res.stdout, "applied with --force") || !strings.Contains(res.stdout, removed) {
		t.Errorf("removing a busy group with --force: want exit 0 saying what it removed\n%s", res)
	}
	if now, _ := w.configGet(); strings.Contains(now, "my-mcp-group:") {
		t.Errorf("after apply --force the group is still stored:\n%s", now)
	}
	if ev := w.ctl("events"); !strings.Contains(ev.stdout, "with --force") {
		t.Errorf("no config_applied event saying --force:\n%s", ev)
	}

	// A replica started with --fleet-config seeds an empty store only: the
	// applied config stays.
	applied, rev := w.configGet()
	r2 := cpStartReplica(t, "r2", w.etcd, "--fleet-config", w.fleet)
	r2.WaitLog(`msg=fleet_config_not_applied`, 10*time.Second)
	if now, nrev := w.configGet(); now != applied || nrev != rev {
		t.Errorf("a replica's --fleet-config overwrote the applied config (revision %d → %d)", rev, nrev)
	}

	// The history lists both stored files; a rollback restores the first.
	hist := w.ctl("config", "history")
	if hist.code != 0 || !strings.Contains(hist.stdout, "--fleet-config of replica r1") || !strings.Contains(hist.stdout, "no-group.yaml") ||
		!strings.Contains(hist.stdout, "(current)") {
		t.Errorf("config history: want the seed by r1 and the forced apply\n%s", hist)
	}
	if res := w.ctl("config", "rollback", fmt.Sprint(rev0)); res.code != 0 || !strings.Contains(res.stdout, "applied: revision") {
		t.Errorf("config rollback %d:\n%s", rev0, res)
	}
	if now, _ := w.configGet(); now != orig {
		t.Errorf("after the rollback to revision %d the stored config is not the original:\n%s", rev0, now)
	}
	if res := w.ctl("config", "rollback", "1"); res.code != 1 || !strings.Contains(res.stderr, "no config revision 1 in the history") {
		t.Errorf("rollback to a revision not kept: want exit 1 saying so\n%s", res)
	}
}
