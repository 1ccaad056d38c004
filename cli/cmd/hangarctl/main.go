// Command hangarctl is the operators' client of Hangar's control plane.
// See package hangarctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/cli/hangarctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := hangarctl.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
