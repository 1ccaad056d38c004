// Command hangar-cpbench measures how fast one control-plane replica moves
// a fleet of simulated agents off an ejected member, and its memory per
// connected agent. See package cpbench for the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/e2e/cpbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == cpbench.ControlPlaneCommand {
		err = cpbench.RunControlPlane(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	} else {
		err = cpbench.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hangar-cpbench: %v\n", err)
		os.Exit(1)
	}
}
