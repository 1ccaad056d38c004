// Command hangar-bench measures what hangar-agent adds to an MCP tool call,
// next to a direct call and a plain reverse proxy, and how it fails over
// under load. It prints a report; see package bench for the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/e2e/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == "reverse-proxy" {
		err = bench.RunProxy(ctx, os.Args[2:], os.Stderr)
	} else {
		err = bench.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hangar-bench: %v\n", err)
		os.Exit(1)
	}
}
