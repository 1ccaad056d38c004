package thirdparty

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Inspector runs the MCP Inspector's CLI once: `inspector --cli ARGS... --
// TARGET...`, where args are the Inspector's options (e.g. "--method",
// "tools/list") and target is a URL or a stdio command and its arguments
// (after "--", so that the Inspector does not take the command's own
// options, such as hangar-agent's --config, for its own). It
// returns what the Inspector printed on stdout (JSON for the list and call
// methods). Its catalog file goes to a temporary folder, never $HOME.
func (tl *Tooling) Inspector(ctx context.Context, tmpDir string, target []string, args ...string) ([]byte, error) {
	argv := append([]string{tl.pkg("@modelcontextprotocol/inspector/clients/launcher/build/index.js"), "--cli"}, args...)
	argv = append(append(argv, "--"), target...)
	cmd := exec.CommandContext(ctx, tl.Node(), argv...)
	cmd.Env = append(cmd.Environ(), "MCP_CATALOG_PATH="+filepath.Join(tmpDir, "inspector-catalog.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("inspector --cli %v %v: %w\nstdout:\n%s\nstderr:\n%s", target, args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}
