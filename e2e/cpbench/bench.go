package cpbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Run runs hangar-cpbench with args: it prints the report to stdout and
// writes it as JSON to -json.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hangar-cpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var echo io.Writer
	if o.Verbose {
		echo = stderr
	}
	fmt.Fprintf(stderr, "hangar-cpbench: starting the control plane, then %d agents...\n", o.Agents)
	cp, err := startControlPlane(dir, echo)
	if err != nil {
		return err
	}
	rep, err := measure(ctx, o, cp, stderr)
	if serr := cp.stop(); err == nil && serr != nil {
		err = fmt.Errorf("stop the control plane: %w", serr)
	}
	if err != nil {
		return err
	}
	rep.print(stdout)
	if o.JSONPath != "" {
		if err := rep.writeJSON(o.JSONPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", o.JSONPath)
	}
	return nil
}

// measure connects the agents to cp and runs the rounds.
func measure(ctx context.Context, o Options, cp *controlPlane, stderr io.Writer) (*report, error) {
	rep := newReport(o)
	s, err := newSim(cp.addr, o.Conns)
	if err != nil {
		return nil, err
	}
	defer s.close()
	// Before: the replica leads and has decided with the fleet file.
	s.start(1)
	if err := s.waitReady(ctx, 1, 30*time.Second); err != nil {
		return nil, err
	}
	if rep.Memory.HeapBeforeKiB, rep.Memory.RSSBeforeKiB, err = cp.memory(ctx); err != nil {
		return nil, err
	}

	start := time.Now()
	for n := 0; n < o.Agents; {
		n = min(n+o.Batch, o.Agents)
		s.start(n)
		if err := s.waitReady(ctx, n, 60*time.Second); err != nil {
			return nil, err
		}
	}
	rep.Connect.Seconds = time.Since(start).Seconds()
	if err := s.waitQuiet(ctx, time.Second, 60*time.Second); err != nil {
		return nil, err
	}
	rep.Connect.SettledSeconds = time.Since(start).Seconds()
	rep.Connect.Reconnects = s.reconnects.Load()
	if rep.Memory.HeapAfterKiB, rep.Memory.RSSAfterKiB, err = cp.memory(ctx); err != nil {
		return nil, err
	}
	_, rep.Memory.PeakRSSKiB, _ = rss(cp.p.PID())
	rep.Memory.perAgent(o.Agents)
	fmt.Fprintf(stderr, "hangar-cpbench: %d agents connected in %.1fs; %d rounds...\n", o.Agents, rep.Connect.Seconds, o.Rounds)

	if o.Profile != "" {
		if err := cp.profile(o.Profile); err != nil {
			return nil, err
		}
	}
	for i := range o.Rounds {
		for _, eject := range []bool{true, false} {
			d, err := s.measure(eject, inRotation(!eject), o.Timeout)
			if err != nil {
				return nil, err
			}
			sum := summarize(d, o.Agents)
			if eject {
				rep.Eject = append(rep.Eject, sum)
			} else {
				rep.Restore = append(rep.Restore, sum)
			}
			if sum.Acked < o.Agents {
				return rep, fmt.Errorf("round %d: %d of %d agents ACKed within %s (last stream error: %v)",
					i+1, sum.Acked, o.Agents, o.Timeout, s.lastErr.Load())
			}
			// Let the ACKs' aftermath (report publishing) pass.
			if err := s.waitQuiet(ctx, 300*time.Millisecond, 30*time.Second); err != nil {
				return nil, err
			}
		}
	}
	rep.finish(s.reconnects.Load(), cp.dbSize())
	return rep, nil
}

// memory returns the replica's heap and stacks in use after GC and its RSS,
// in KiB.
func (cp *controlPlane) memory(ctx context.Context) (heapKiB, rssKiB int64, err error) {
	heap, err := cp.heapInUse(ctx)
	if err != nil {
		return 0, 0, err
	}
	cur, _, err := rss(cp.p.PID())
	return heap >> 10, cur, err
}
