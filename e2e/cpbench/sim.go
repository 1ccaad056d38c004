package cpbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

const (
	groupID  = "my-mcp-group"
	primary  = "my-mcp"
	backupID = "my-mcp-backup"
)

// sim is the fleet of simulated agents. Each agent's goroutine reads its
// stream, ACKs every snapshot at once and, while a round runs, notes when
// it ACKed the first snapshot the round waits for. An agent whose stream
// ends reconnects (the control plane disconnects agents too slow to read).
type sim struct {
	ctx        context.Context
	cancel     context.CancelFunc
	conns      []*grpc.ClientConn
	agents     []*simAgent
	wg         sync.WaitGroup
	round      atomic.Pointer[round]
	ready      atomic.Int64 // agents that received a first snapshot
	reconnects atomic.Int64
	lastErr    atomic.Value // string: why the last stream ended
}

type simAgent struct {
	i      int
	id     string
	conn   *grpc.ClientConn
	latest atomic.Uint64 // version of the last snapshot received

	mu     sync.Mutex // one Send at a time: the ACKs, the reports
	stream hangarv1.AgentService_ConnectClient
	seq    uint64
}

// round waits for each agent's first snapshot that satisfies want.
type round struct {
	want  func(*hangarv1.Snapshot) bool
	acked []atomic.Int64 // by agent: when it ACKed it (unix ns), 0 before
	n     atomic.Int64
	all   chan struct{} // closed when every agent has
}

func newSim(addr string, conns int) (*sim, error) {
	s := &sim{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("dial the control plane at %s: %w", addr, err)
		}
		s.conns = append(s.conns, c)
	}
	return s, nil
}

// start connects agents until there are n.
func (s *sim) start(n int) {
	for i := len(s.agents); i < n; i++ {
		a := &simAgent{i: i, id: fmt.Sprintf("agent-%05d", i), conn: s.conns[i%len(s.conns)]}
		s.agents = append(s.agents, a)
		s.wg.Go(func() { s.run(a) })
	}
}

// close ends every stream and waits for the agents' goroutines.
func (s *sim) close() {
	s.cancel()
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// run keeps the agent connected until the sim closes, reconnecting with
// capped, jittered backoff.
func (s *sim) run(a *simAgent) {
	wait := 50 * time.Millisecond
	for {
		err := s.session(a)
		if s.ctx.Err() != nil {
			return
		}
		s.reconnects.Add(1)
		s.lastErr.Store(err.Error())
		t := time.NewTimer(wait/2 + rand.N(wait/2))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (s *sim) session(a *simAgent) error {
	stream, err := hangarv1.NewAgentServiceClient(a.conn).Connect(s.ctx)
	if err != nil {
		return err
	}
	hello := &hangarv1.Hello{AgentId: a.id, Host: a.id, Version: "cpbench", SnapshotVersion: a.latest.Load(),
		Servers:      []string{primary, backupID},
		Capabilities: 1<<hangarv1.Capability_CAPABILITY_SNAPSHOTS | 1<<hangarv1.Capability_CAPABILITY_ASSIGNMENTS}
	a.mu.Lock()
	a.stream = stream
	err = stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: hello}})
	a.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		snap := m.GetSnapshot()
		if snap == nil {
			continue // an Assignment: simulated agents probe nothing
		}
		ack := &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: snap.GetVersion(), Nonce: snap.GetNonce()}}}
		a.mu.Lock()
		err = stream.Send(ack)
		a.mu.Unlock()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if a.latest.Swap(snap.GetVersion()) == 0 {
			s.ready.Add(1)
		}
		if r := s.round.Load(); r != nil && r.want(snap) && r.acked[a.i].CompareAndSwap(0, now) {
			if r.n.Add(1) == int64(len(r.acked)) {
				close(r.all)
			}
		}
	}
}

// report sends a change report in which the agent called both members
// just now, with my-mcp out of its local rotation if ejected.
func (a *simAgent) report(ejected bool) error {
	now := timestamppb.Now()
	m := &hangarv1.MemberReport{Member: primary, State: hangarv1.MemberState_MEMBER_STATE_READY, LastCall: now}
	if ejected {
		m.EjectedIn = []string{groupID}
	}
	b := &hangarv1.MemberReport{Member: backupID, State: hangarv1.MemberState_MEMBER_STATE_READY, LastCall: now}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stream == nil {
		return fmt.Errorf("%s has no stream", a.id)
	}
	a.seq++
	r := &hangarv1.Report{Seq: a.seq, At: now, Members: []*hangarv1.MemberReport{m, b}}
	return a.stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: r}})
}

// measure makes agent 0 report, then waits up to timeout for every agent
// to ACK a snapshot satisfying want. It returns each agent's time from the
// report to that ACK; agents that did not get there are left out.
func (s *sim) measure(ejected bool, want func(*hangarv1.Snapshot) bool, timeout time.Duration) ([]time.Duration, error) {
	r := &round{want: want, acked: make([]atomic.Int64, len(s.agents)), all: make(chan struct{})}
	s.round.Store(r)
	defer s.round.Store(nil)
	start := time.Now()
	if err := s.agents[0].report(ejected); err != nil {
		return nil, fmt.Errorf("send the report: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.all:
	case <-t.C:
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
	out := make([]time.Duration, 0, len(r.acked))
	for i := range r.acked {
		if at := r.acked[i].Load(); at != 0 {
			out = append(out, time.Duration(at-start.UnixNano()))
		}
	}
	return out, nil
}

// waitReady waits until n agents have received a snapshot.
func (s *sim) waitReady(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.ready.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d agents received a snapshot within %s (last stream error: %v)",
				s.ready.Load(), n, timeout, s.lastErr.Load())
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// waitQuiet waits until every agent has the same snapshot version and no
// new one came for quiet: the control plane has settled.
func (s *sim) waitQuiet(ctx context.Context, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last uint64
	since := time.Now()
	for {
		lo, hi := s.versions()
		if lo != hi || hi != last {
			last, since = hi, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agents still at versions %d to %d after %s", lo, hi, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// versions returns the lowest and highest snapshot version the agents have.
func (s *sim) versions() (lo, hi uint64) {
	lo = ^uint64(0)
	for _, a := range s.agents {
		v := a.latest.Load()
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inRotation returns a predicate: my-mcp is (or is not) in the group's
// rotation.
func inRotation(want bool) func(*hangarv1.Snapshot) bool {
	return func(s *hangarv1.Snapshot) bool {
		for _, g := range s.GetGroups() {
			if g.GetId() != groupID {
				continue
			}
			for _, m := range g.GetRotation() {
				if m == primary {
					return want
				}
			}
			return !want
		}
		return false
	}
}
