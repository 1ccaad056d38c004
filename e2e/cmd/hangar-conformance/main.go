// Command hangar-conformance runs the official MCP conformance suite's
// server tests against the Go SDK's conformance server directly and through
// hangar-agent (make conformance); see package e2e/conformance.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hangarmesh/hangar/e2e/conformance"
	"github.com/hangarmesh/hangar/e2e/thirdparty"
)

func main() {
	bin := flag.String("bin", "bin", "folder with hangar-agent and everything-server (the Go SDK's conformance server)")
	known := flag.String("known", "e2e/conformance/known-failures.txt", "scenarios known to fail through the agent, one 'MODE SCENARIO' a line")
	out := flag.String("out", ".conformance", "folder for the suite's results and the agents' logs (emptied first)")
	modes := flag.String("modes", "one,pair,pair-kill", "agent modes to run after direct: "+strings.Join(conformance.AllModes[1:], ","))
	parallel := flag.Int("parallel", 3, "scenarios run at once in the pair-kill mode (each in its own suite process)")
	update := flag.Bool("update", false, "rewrite the known-failures file with this run's failures (review the diff before committing it)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *bin, *known, *out, *modes, *update, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "hangar-conformance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, known, out, modes string, update bool, parallel int) error {
	tl, err := thirdparty.Find()
	if err != nil {
		return err
	}
	var ms []string
	if modes != "" {
		ms = strings.Split(modes, ",")
	}
	all, err := conformance.Run(ctx, conformance.Options{Bin: bin, Known: known, Out: out, Modes: ms, Parallel: parallel, Tooling: tl, Log: os.Stdout})
	if !update || len(all) == 0 {
		return err
	}
	if werr := conformance.WriteKnown(known, all); werr != nil {
		return werr
	}
	fmt.Printf("rewrote %s with this run's failures\n", known)
	return nil
}
