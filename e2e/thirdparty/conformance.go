package thirdparty

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// Conformance runs the official conformance suite's server tests against
// the MCP endpoint url: every scenario of the active suite, or only
// scenario when it is not empty. Results go to outDir, one folder per
// scenario with a checks.json (read them with package e2e/conformance).
// A failing scenario is not an error (the suite then exits 1); an error
// means the suite could not run. The suite's output is returned either way.
func (tl *Tooling) Conformance(ctx context.Context, url, scenario, outDir string) ([]byte, error) {
	args := []string{tl.pkg("@modelcontextprotocol/conformance/dist/index.js"), "server", "--url", url, "-o", outDir}
	if scenario != "" {
		args = append(args, "--scenario", scenario)
	}
	cmd := exec.CommandContext(ctx, tl.Node(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(cmd.Environ(), "NO_COLOR=1", "FORCE_COLOR=0", tl.compileCache())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ctx.Err() == nil {
		return out.Bytes(), nil
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("conformance server --url %s %s: %w\n%s", url, scenario, err, out.Bytes())
	}
	return out.Bytes(), nil
}
