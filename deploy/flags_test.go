package deploy

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/hangarmesh/hangar/cli/hangarctl"
	"github.com/hangarmesh/hangar/controlplane/daemon"
	"github.com/hangarmesh/hangar/dataplane/agent"
	"github.com/hangarmesh/hangar/e2e/mathserver"
)

// checkArgs parses args (without the program name) with the real command
// line of binary and fails the test on an unknown flag or a bad value:
// every command line an artefact ships must be one the binary accepts.
// "--help" at the end makes the command stop after parsing.
func checkArgs(t *testing.T, where, binary string, args []string) {
	t.Helper()
	if err := argsError(binary, args); err != nil {
		t.Errorf("%s: %s %q is refused by the binary: %v", where, binary, args, err)
	}
}

func argsError(binary string, args []string) error {
	var out bytes.Buffer
	ctx := context.Background()
	help := append(append([]string{}, args...), "--help")
	var err error
	switch binary {
	case "hangar-agent":
		err = agent.Run(ctx, help, nil, &out, &out)
	case "hangar-controlplane":
		err = daemon.Run(ctx, help, &out, &out)
	case "hangarctl":
		if code := hangarctl.Run(ctx, help, nil, &out, &out); code != hangarctl.ExitOK {
			err = errors.New(out.String())
		}
	case "mcp-math":
		err = mathserver.Run(ctx, append(append([]string{}, args...), "-h"), &out, &out)
		if errors.Is(err, flag.ErrHelp) {
			err = nil
		}
	default:
		err = fmt.Errorf("unknown binary %q", binary)
	}
	return err
}

func TestCheckArgsRefusesUnknownFlags(t *testing.T) {
	for _, bin := range []string{"hangar-agent", "hangar-controlplane", "mcp-math"} {
		args := []string{"--no-such-flag"}
		if bin != "mcp-math" {
			args = []string{"serve", "--no-such-flag"}
		}
		if argsError(bin, args) == nil {
			t.Errorf("checkArgs accepted an unknown flag of %s: the flag checks would pass vacuously", bin)
		}
	}
}
