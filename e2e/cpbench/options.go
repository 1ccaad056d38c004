package cpbench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Options are hangar-cpbench's settings, from its flags.
type Options struct {
	Agents   int           // simulated agents, each with its own stream
	Conns    int           // gRPC client connections the streams share
	Batch    int           // agents connected at a time
	Rounds   int           // eject/restore rounds
	Timeout  time.Duration // longest wait for every agent in a round
	JSONPath string        // where the JSON report goes; "" for nowhere
	Profile  string        // CPU profile of the control plane during the rounds; "" for none
	Fleet    string        // fleet file: "recipe", "large" or a path
	Replicas int           // control-plane replicas sharing the agents
	Steady   time.Duration // heartbeat phase measuring CPU and etcd writes; 0: none
	Verbose  bool          // echo the control plane's output
}

func parseOptions(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("hangar-cpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Agents, "agents", 1000, "simulated agents (one Connect stream each)")
	fs.IntVar(&o.Conns, "conns", 8, "gRPC client connections the agents' streams share")
	fs.IntVar(&o.Batch, "batch", 1000, "agents connected at a time (each batch waits for its first snapshots)")
	fs.IntVar(&o.Rounds, "rounds", 5, "eject/restore rounds; the median one is reported")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "longest wait for every agent's ACK in a round")
	fs.StringVar(&o.JSONPath, "json", ".bench/cpbench.json", `write the report as JSON to this file ("" for none)`)
	fs.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the control plane during the rounds to this file (of the simulated agents to this file + .sim), and a heap profile after them to this file + .heap")
	fs.BoolVar(&o.Verbose, "v", false, "echo the control plane's output")
	fs.StringVar(&o.Fleet, "fleet", fleetLarge, `fleet file: "large" (the recipe plus 100 groups of 3 servers), "recipe" (the failover recipe alone) or a file's path; it must have the recipe's group my-mcp-group`)
	fs.IntVar(&o.Replicas, "replicas", 1, "control-plane replicas (each its own process, on the first one's embedded etcd); agents spread over them")
	fs.DurationVar(&o.Steady, "steady", 10*time.Second, "after the rounds, every agent heartbeats once a second this long: the replicas' CPU and etcd's writes are measured (0: skip)")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q: hangar-cpbench takes only flags (see -h)", fs.Arg(0))
	}
	return o, o.Validate()
}

// Validate checks that every setting is usable.
func (o Options) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.Agents >= 2, "-agents %d: want at least 2 (one reports, the others follow)", o.Agents)
	check(o.Conns >= 1 && o.Conns <= o.Agents, "-conns %d: want 1 to -agents (%d)", o.Conns, o.Agents)
	check(o.Batch >= 1, "-batch %d: want at least 1", o.Batch)
	check(o.Rounds >= 1, "-rounds %d: want at least 1", o.Rounds)
	check(o.Timeout > 0, "-timeout %s: want a positive duration such as 30s", o.Timeout)
	check(o.Replicas >= 1 && o.Replicas <= o.Agents, "-replicas %d: want 1 to -agents (%d)", o.Replicas, o.Agents)
	check(o.Steady >= 0, "-steady %s: want 0 or a positive duration", o.Steady)
	return errors.Join(errs...)
}
