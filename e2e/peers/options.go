package peers

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Options are hangar-peers' settings, from its flags.
type Options struct {
	BinDir   string        // holds hangar-agent (make build)
	Calls    int           // sequential calls per path, warm-up excluded
	Warmup   int           // warm-up calls per path
	Rounds   int           // blocks in which the paths take turns
	Clients  int           // sessions of the saturated run
	Duration time.Duration // saturated run per path
	Rate     int           // paced load: calls per second
	Sessions int           // paced load: sessions carrying the calls
	Budget   time.Duration // paced load: each call's budget
	Before   time.Duration // paced load before the fault
	After    time.Duration // paced load after the fault
	Peers    []string      // which peers to run, in allPeers' order
	JSONPath string        // where the JSON report goes; "" for nowhere
	Verbose  bool          // echo the processes' output
}

// quick are the values -quick gives the flags that are not set explicitly.
var quick = map[string]string{
	"n": "200", "warmup": "20", "rounds": "2", "d": "1s", "before": "1s", "after": "2s",
}

func peerNames() []string {
	var names []string
	for _, p := range allPeers() {
		names = append(names, p.name)
	}
	return names
}

func parseOptions(args []string, stderr io.Writer) (Options, error) {
	var o Options
	var peers string
	fs := flag.NewFlagSet("hangar-peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding hangar-agent (make build)")
	fs.IntVar(&o.Calls, "n", 1000, "sequential calls per path, after the warm-up")
	fs.IntVar(&o.Warmup, "warmup", 100, "warm-up calls per path, not measured")
	fs.IntVar(&o.Rounds, "rounds", 10, "blocks in which the paths take turns (evens out background load)")
	fs.IntVar(&o.Clients, "c", 8, "sessions of the saturated run")
	fs.DurationVar(&o.Duration, "d", 3*time.Second, "saturated run per path")
	fs.IntVar(&o.Rate, "rate", 200, "kill and freeze runs: calls per second")
	fs.IntVar(&o.Sessions, "sessions", 8, "kill and freeze runs: sessions carrying the calls")
	fs.DurationVar(&o.Budget, "budget", 2*time.Second, "kill and freeze runs: a call without an answer within this failed")
	fs.DurationVar(&o.Before, "before", 2*time.Second, "kill and freeze runs: load before the fault")
	fs.DurationVar(&o.After, "after", 4*time.Second, "kill and freeze runs: load after the fault")
	fs.StringVar(&peers, "peers", strings.Join(peerNames(), ","), "comma-separated peers to run")
	fs.StringVar(&o.JSONPath, "json", ".bench/peers.json", "write the report as JSON to this file (empty: do not)")
	fs.BoolVar(&o.Verbose, "v", false, "echo the output of the processes started")
	isQuick := fs.Bool("quick", false, "a short run (-n 200 -warmup 20 -rounds 2 -d 1s -before 1s -after 2s) unless those flags are set")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q: hangar-peers takes only flags (see -h)", fs.Arg(0))
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
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Peers = append(o.Peers, p)
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
	check(o.BinDir != "", "-bin is empty: name the directory of hangar-agent (make build writes bin/)")
	check(o.Calls >= 1, "-n %d: want at least 1 call", o.Calls)
	check(o.Warmup >= 1, "-warmup %d: want 1 or more (the first call checks the path)", o.Warmup)
	check(o.Rounds >= 1 && o.Rounds <= o.Calls, "-rounds %d: want 1 to -n (%d)", o.Rounds, o.Calls)
	check(o.Clients >= 1, "-c %d: want at least 1 session", o.Clients)
	check(o.Duration > 0, "-d %s: want a positive duration such as 3s", o.Duration)
	check(o.Rate >= 1, "-rate %d: want at least 1 call per second", o.Rate)
	check(o.Sessions >= 1, "-sessions %d: want at least 1", o.Sessions)
	check(o.Budget > 0, "-budget %s: want a positive duration such as 2s", o.Budget)
	check(o.Before > 0 && o.After > 0, "-before %s, -after %s: want positive durations such as 2s", o.Before, o.After)
	check(len(o.Peers) > 0, "-peers is empty: name at least one of %s", strings.Join(peerNames(), ", "))
	for _, p := range o.Peers {
		check(slices.Contains(peerNames(), p), "-peers: unknown peer %q; the peers are %s", p, strings.Join(peerNames(), ", "))
	}
	return errors.Join(errs...)
}

func (o Options) load() loadSettings {
	return loadSettings{rate: o.Rate, sessions: o.Sessions, budget: o.Budget, before: o.Before, after: o.After}
}
