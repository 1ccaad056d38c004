// Command hangar-agent is Hangar's data plane: an MCP gateway with health
// checks, rotation, circuit breakers and failover. See package agent.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/dataplane/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agent.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if code := agent.ExitCode(err); code != 0 {
		fmt.Fprintln(os.Stderr, "hangar-agent:", err)
		os.Exit(code)
	}
}
