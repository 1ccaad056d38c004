// Command hangar-controlplane is Hangar's control plane. See package daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/controlplane/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := daemon.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if code := daemon.ExitCode(err); code != 0 {
		fmt.Fprintln(os.Stderr, "hangar-controlplane:", err)
		os.Exit(code)
	}
}
