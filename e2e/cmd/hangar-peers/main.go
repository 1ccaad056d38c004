// Command hangar-peers puts hangar-agent beside nginx and MCP gateways from
// npm, in front of the same server-everything upstreams, and prints what
// each adds to a tool call and how each meets a killed or frozen primary.
// See package peers for the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/e2e/peers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := peers.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hangar-peers: %v\n", err)
		os.Exit(1)
	}
}
