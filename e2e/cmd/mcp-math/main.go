// Command mcp-math is the MCP server that Hangar's end-to-end tests and demo
// use as an upstream: arithmetic tools with injectable faults. See package
// mathserver for the flags and the admin API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/e2e/mathserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := mathserver.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcp-math: %v\n", err)
		os.Exit(1)
	}
}
