// Command hangar-demo is `make demo`: two mcp-math upstreams, a control
// plane on embedded etcd with the failover recipe, two agents it manages,
// steady traffic, the primary killed and restarted. It exits non-zero if a
// call failed, failover or failback did not happen, or an agent called the
// primary after the control plane excluded it. See package demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hangarmesh/hangar/e2e/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := demo.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hangar-demo:", err)
		os.Exit(1)
	}
}
