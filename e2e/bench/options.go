package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Options are hangar-bench's settings, from its flags.
type Options struct {
	BinDir   string        // holds hangar-agent and mcp-math
	Calls    int           // sequential calls per path, warm-up excluded
	Warmup   int           // warm-up calls per path
	Rounds   int           // blocks in which the paths take turns
	Clients  int           // concurrent sessions of the throughput run
	Duration time.Duration // throughput run per path
	Paced    time.Duration // steady-load run per path
	Allocs   int           // calls per path of the allocation count
	Rate     int           // failover and steady runs: calls per second
	Workers  int           // failover run: concurrent sessions
	Before   time.Duration // failover run: load before the kill
	After    time.Duration // failover run: load after the kill
	JSONPath string        // where the JSON report goes; "" for nowhere
	Verbose  bool          // echo the processes' output
}

// quick are the values -quick gives the flags that are not set explicitly.
var quick = map[string]string{
	"n": "300", "warmup": "50", "rounds": "3", "d": "1s", "paced": "1s", "allocs": "300", "before": "1s", "after": "2s",
}

func parseOptions(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("hangar-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding the hangar-agent and mcp-math binaries (make build)")
	fs.IntVar(&o.Calls, "n", 2000, "sequential calls per path, after the warm-up")
	fs.IntVar(&o.Warmup, "warmup", 200, "warm-up calls per path, not measured")
	fs.IntVar(&o.Rounds, "rounds", 10, "blocks in which the paths take turns (evens out background load)")
	fs.IntVar(&o.Clients, "c", 16, "concurrent sessions of the throughput run")
	fs.DurationVar(&o.Duration, "d", 5*time.Second, "throughput run per path")
	fs.DurationVar(&o.Paced, "paced", 3*time.Second, "steady-load run (-rate calls/s on -workers sessions) per path")
	fs.IntVar(&o.Allocs, "allocs", 2000, "calls per path of the in-process allocation count")
	fs.IntVar(&o.Rate, "rate", 200, "failover and steady-load runs: calls per second")
	fs.IntVar(&o.Workers, "workers", 8, "failover and steady-load runs: concurrent sessions carrying the calls")
	fs.DurationVar(&o.Before, "before", 3*time.Second, "failover run: load before the primary is killed")
	fs.DurationVar(&o.After, "after", 5*time.Second, "failover run: load after the kill")
	fs.StringVar(&o.JSONPath, "json", ".bench/report.json", `write the report as JSON to this file ("" for none)`)
	fs.BoolVar(&o.Verbose, "v", false, "echo the output of the processes started")
	isQuick := fs.Bool("quick", false, "a short run (-n 300 -warmup 50 -rounds 3 -d 1s -paced 1s -allocs 300 -before 1s -after 2s) unless those flags are set")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q: hangar-bench takes only flags (see -h)", fs.Arg(0))
	}
	if *isQuick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quick {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return Options{}, err
				}
			}
		}
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
	check(o.BinDir != "", "-bin is empty: name the directory of hangar-agent and mcp-math (make build writes bin/)")
	check(o.Calls >= 1, "-n %d: want at least 1 call", o.Calls)
	check(o.Warmup >= 0, "-warmup %d: want 0 or more", o.Warmup)
	check(o.Rounds >= 1 && o.Rounds <= o.Calls, "-rounds %d: want 1 to -n (%d)", o.Rounds, o.Calls)
	check(o.Clients >= 1, "-c %d: want at least 1 client", o.Clients)
	check(o.Duration > 0, "-d %s: want a positive duration such as 5s", o.Duration)
	check(o.Paced > 0, "-paced %s: want a positive duration such as 3s", o.Paced)
	check(o.Allocs >= 1, "-allocs %d: want at least 1 call", o.Allocs)
	check(o.Rate >= 1, "-rate %d: want at least 1 call per second", o.Rate)
	check(o.Workers >= 1, "-workers %d: want at least 1", o.Workers)
	check(o.Before > 0 && o.After > 0, "-before %s, -after %s: want positive durations such as 3s", o.Before, o.After)
	return errors.Join(errs...)
}
