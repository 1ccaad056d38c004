package cpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/controlplane/store"
)

// Run runs hangar-cpbench with args: it prints the report to stdout and
// writes it as JSON to -json.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	yaml, err := fleetFile(o.Fleet)
	if err != nil {
		return err
	}
	others, members, err := otherGroups(yaml)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hangar-cpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(yaml), 0o644); err != nil {
		return err
	}
	var echo io.Writer
	if o.Verbose {
		echo = stderr
	}
	fmt.Fprintf(stderr, "hangar-cpbench: starting %d control-plane replica(s), then %d agents...\n", o.Replicas, o.Agents)
	var cps []*controlPlane
	stop := func() error {
		var errs []error
		for _, cp := range cps {
			if err := cp.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", cp.name, err))
			}
		}
		return errors.Join(errs...)
	}
	for i := range o.Replicas {
		etcd := ""
		if i > 0 {
			etcd = cps[0].etcd
		}
		cp, err := startControlPlane(dir, fmt.Sprintf("cpbench-%d", i+1), fleet, etcd, echo)
		if err != nil {
			return errors.Join(err, stop())
		}
		cps = append(cps, cp)
	}
	distinct := map[string]bool{}
	for _, ms := range members {
		for _, m := range ms {
			distinct[m] = true
		}
	}
	rep := newReport(o, len(yaml), len(others)+1, len(distinct))
	err = measure(ctx, o, cps, agentGroups(others), members, rep, stderr)
	if serr := stop(); err == nil && serr != nil {
		err = serr
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

// agentGroups returns which groups agent i serves: the recipe's group
// (every agent, so that an ejection there reaches them all), and up to two
// of the others, chosen at random but the same on every run.
func agentGroups(others []string) func(int) []string {
	return func(i int) []string {
		out := []string{groupID}
		if len(others) == 0 {
			return out
		}
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		for range rng.IntN(3) {
			g := others[rng.IntN(len(others))]
			if g != out[len(out)-1] {
				out = append(out, g)
			}
		}
		return out
	}
}

// measure connects the agents to the replicas and runs the rounds.
func measure(ctx context.Context, o Options, cps []*controlPlane, groups func(int) []string, members map[string][]string, rep *report, stderr io.Writer) error {
	var addrs []string
	for _, cp := range cps {
		addrs = append(addrs, cp.addr)
	}
	s, err := newSim(addrs, o.Conns, groups, members)
	if err != nil {
		return err
	}
	defer s.close()
	// Before: the replicas lead or follow and have decided with the fleet file.
	s.start(len(cps))
	if err := s.waitReady(ctx, len(cps), 30*time.Second); err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cps[0].etcd}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("connect to the control plane's etcd: %w", err)
	}
	defer cli.Close()
	mctx, stopMeter := context.WithCancel(ctx)
	defer stopMeter()
	meter := startEtcdMeter(mctx, cli)
	phase := meter.begin()
	before := make([]replicaMemory, len(cps))
	for i, cp := range cps {
		if before[i].HeapKiB, before[i].RSSKiB, err = cp.memory(ctx); err != nil {
			return err
		}
	}
	start := time.Now()
	for n := 0; n < o.Agents; {
		n = min(n+o.Batch, o.Agents)
		s.start(n)
		if err := s.waitReady(ctx, n, 120*time.Second); err != nil {
			return err
		}
	}
	rep.Connect.Seconds = time.Since(start).Seconds()
	// Settling takes longer with more agents: every connect changes the
	// probe assignments, so the leader writes versions until the last.
	if err := s.waitQuiet(ctx, time.Second, max(120*time.Second, time.Duration(o.Agents)*20*time.Millisecond)); err != nil {
		return err
	}
	rep.Connect.SettledSeconds = time.Since(start).Seconds()
	meter.end(phase)
	rep.Etcd.Connect = phase
	rep.Connect.Reconnects = s.reconnects.Load()
	if err := rep.measureMemory(ctx, cps, before); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hangar-cpbench: %d agents connected in %.1fs; %d rounds...\n", o.Agents, rep.Connect.Seconds, o.Rounds)
	var simProfile *os.File
	if o.Profile != "" {
		if err := cps[0].profile(o.Profile); err != nil {
			return err
		}
		if simProfile, err = startProfile(o.Profile + ".sim"); err != nil {
			return err
		}
	}
	phase = meter.begin()
	err = rounds(ctx, o, s, rep)
	if simProfile != nil {
		pprof.StopCPUProfile()
		simProfile.Close()
	}
	if err != nil {
		return err
	}
	meter.end(phase)
	rep.Etcd.Rounds = phase
	if o.Profile != "" {
		if err := cps[0].heapProfile(ctx, o.Profile+".heap"); err != nil {
			return err
		}
	}
	if o.Steady > 0 {
		fmt.Fprintf(stderr, "hangar-cpbench: every agent heartbeats once a second for %s...\n", o.Steady)
		if err := steady(ctx, o, s, cps, cli, meter, rep); err != nil {
			return err
		}
	}
	rep.finish(s.reconnects.Load(), cps[0].dbSize())
	return nil
}

// rounds runs the eject/restore rounds.
func rounds(ctx context.Context, o Options, s *sim, rep *report) error {
	for i := range o.Rounds {
		for _, eject := range []bool{true, false} {
			rx := s.received()
			d, ph, err := s.measure(eject, inRotation(!eject), o.Timeout)
			if err != nil {
				return err
			}
			sum := summarize(d, o.Agents)
			sum.Phases = ph
			// Let the ACKs' aftermath (report publishing) pass.
			if err := s.waitQuiet(ctx, 300*time.Millisecond, 30*time.Second); err != nil {
				return err
			}
			sum.BytesPerAgent = float64(s.received()-rx) / float64(o.Agents)
			if eject {
				rep.Eject = append(rep.Eject, sum)
			} else {
				rep.Restore = append(rep.Restore, sum)
			}
			if sum.Acked < o.Agents {
				return fmt.Errorf("round %d: %d of %d agents ACKed within %s (last stream error: %v)",
					i+1, sum.Acked, o.Agents, o.Timeout, s.lastErr.Load())
			}
		}
	}
	return nil
}

// steady makes every agent heartbeat once a second for o.Steady and
// measures the replicas' CPU and the writes to etcd meanwhile.
func steady(ctx context.Context, o Options, s *sim, cps []*controlPlane, cli *clientv3.Client, meter *etcdMeter, rep *report) error {
	leader, err := store.New(cli, "").Leader(ctx)
	if err != nil {
		return fmt.Errorf("find the leader: %w", err)
	}
	revision := func() (int64, error) {
		r, err := cli.Get(ctx, "/hangar/config", clientv3.WithCountOnly())
		if err != nil {
			return 0, fmt.Errorf("read etcd's revision: %w", err)
		}
		return r.Header.Revision, nil
	}
	// Let the first heartbeats' changes pass, then measure.
	warm := min(o.Steady/3, 5*time.Second)
	go func() { _ = s.heartbeats(ctx, o.Steady+warm) }()
	if err := sleep(ctx, warm); err != nil {
		return err
	}
	rev0, err := revision()
	if err != nil {
		return err
	}
	cpu0 := make([]float64, len(cps))
	for i, cp := range cps {
		if cpu0[i], err = cp.cpuSeconds(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	phase := meter.begin()
	if err := sleep(ctx, o.Steady); err != nil {
		return err
	}
	meter.end(phase)
	rep.Etcd.Steady = phase
	secs := time.Since(t0).Seconds()
	rev1, err := revision()
	if err != nil {
		return err
	}
	st := steadyState{Seconds: secs, EtcdWritesPerSec: float64(rev1-rev0) / secs, Leader: leader}
	for i, cp := range cps {
		c, err := cp.cpuSeconds()
		if err != nil {
			return err
		}
		st.CPU = append(st.CPU, replicaCPU{Replica: cp.name, CoresUsed: (c - cpu0[i]) / secs, Leader: cp.name == leader})
	}
	rep.Steady = &st
	return sleep(ctx, warm) // the heartbeats end
}
