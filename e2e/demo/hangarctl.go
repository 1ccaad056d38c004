package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// hangarctlTimeout bounds one hangarctl run; hangarctl's own
	// --timeout (5 s a request) ends it sooner when no replica answers.
	hangarctlTimeout = 15 * time.Second
	// settleViewFor bounds the wait for the control plane's view to catch
	// up with the agents (every prober's first verdict, every ACK) before
	// the first table: a heartbeat or two. The table is shown either way.
	settleViewFor = 5 * time.Second
)

// showCtl runs the real bin/hangarctl against the demo's control plane,
// as an operator would, and prints intro (if any), the command line and
// its output. A non-zero exit fails the demo with hangarctl's stderr.
func (d *demo) showCtl(ctx context.Context, intro string, args ...string) error {
	args = append([]string{"--control-plane", d.cp.grpc}, args...)
	shown := "$ hangarctl " + strings.Join(args, " ")
	out, stderr, err := d.runCtl(ctx, args)
	if errors.Is(err, errInterrupted) {
		return err
	}
	if err != nil {
		out = stderr
	}
	d.out.command(intro, shown, out)
	return err
}

// groupStatusCtl shows `hangarctl group status` of the demo's group.
func (d *demo) groupStatusCtl(ctx context.Context, intro string) error {
	return d.showCtl(ctx, intro, "group", "status", groupName)
}

// ctlGroup is the part of `hangarctl -o json group status` the demo reads.
type ctlGroup struct {
	AgentsAcked int `json:"agents_acked"`
	AgentsTotal int `json:"agents_total"`
	Members     []struct {
		Probers     []string `json:"probers"`
		ProbesReady int      `json:"probes_ready"`
	} `json:"members"`
}

// settled reports whether every agent ACKed the snapshot and every
// member's probers all report it ready.
func (g ctlGroup) settled() bool {
	for _, m := range g.Members {
		if m.ProbesReady < len(m.Probers) {
			return false
		}
	}
	return g.AgentsTotal > 0 && g.AgentsAcked == g.AgentsTotal && len(g.Members) > 0
}

// settleView waits, up to settleViewFor, until the control plane's view
// of the group has every agent's first probe verdicts and ACK, so the
// first table shows the fleet the agents already see. It asks hangarctl
// (-o json) and fails only if hangarctl does.
func (d *demo) settleView(ctx context.Context) error {
	deadline := time.Now().Add(settleViewFor)
	for {
		out, _, err := d.runCtl(ctx, []string{"--control-plane", d.cp.grpc, "-o", "json", "group", "status", groupName})
		if err != nil {
			return err
		}
		var g ctlGroup
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			return fmt.Errorf("hangarctl -o json group status %s: decode its output: %w", groupName, err)
		}
		if g.settled() || time.Now().After(deadline) {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// runCtl runs bin/hangarctl with args and returns its stdout and stderr.
// The error of a failed run names the command, how it ended and, from its
// first line on, what hangarctl printed on stderr.
func (d *demo) runCtl(ctx context.Context, args []string) (stdout, stderr string, err error) {
	rctx, cancel := context.WithTimeout(ctx, hangarctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, filepath.Join(d.opts.bin, "hangarctl"), args...)
	cmd.WaitDelay = time.Second
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	switch {
	case ctx.Err() != nil:
		return "", "", errInterrupted
	case err == nil:
		return stdout, stderr, nil
	}
	why := err.Error()
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) && exit.Exited() {
		why = fmt.Sprintf("exited with status %d", exit.ExitCode())
	} else if rctx.Err() != nil {
		why = fmt.Sprintf("did not finish within %s", hangarctlTimeout)
	}
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = "(nothing on stderr)"
	}
	return stdout, stderr, fmt.Errorf("hangarctl %s %s: %s", strings.Join(args[2:], " "), why, msg)
}
