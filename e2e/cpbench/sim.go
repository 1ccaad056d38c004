package cpbench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/internal/snapshot"
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
	conns      [][]*grpc.ClientConn // by replica
	groups     func(i int) []string // agent i's groups
	members    map[string][]string  // group → members
	fleet      atomic.Pointer[[]byte]
	agents     []*simAgent
	wg         sync.WaitGroup
	round      atomic.Pointer[round]
	ready      atomic.Int64 // agents that received a first snapshot
	reconnects atomic.Int64
	lastErr    atomic.Value // string: why the last stream ended
}

type simAgent struct {
	i       int
	id      string
	conn    *grpc.ClientConn
	groups  []string
	servers []string
	latest  atomic.Uint64 // version of the last snapshot received
	rx      atomic.Int64  // bytes received
	// state is the full state the snapshots so far make; its fleet file
	// is the sim's one shared copy. Only the agent's goroutine uses it.
	state *hangarv1.Snapshot

	mu     sync.Mutex // one Send at a time: the ACKs, the reports
	stream hangarv1.AgentService_ConnectClient
	seq    uint64
}

// round waits for each agent's first snapshot that satisfies want.
type round struct {
	want  func(*hangarv1.Snapshot) bool
	acked []atomic.Int64 // by agent: when it ACKed it (unix ns), 0 before
	recv  []atomic.Int64 // by agent: when its stream received it (unix ns)
	// created is when the leader decided the first such snapshot (unix
	// ns, from Snapshot.created): report → decision → fan-out → apply.
	created atomic.Int64
	n       atomic.Int64
	all     chan struct{} // closed when every agent has
}

// newSim dials conns connections to each replica; agent i serves
// groups(i), whose members are in members.
func newSim(addrs []string, conns int, groups func(int) []string, members map[string][]string) (*sim, error) {
	s := &sim{groups: groups, members: members}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, addr := range addrs {
		var cs []*grpc.ClientConn
		for range conns {
			c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				s.close()
				return nil, fmt.Errorf("dial the control plane at %s: %w", addr, err)
			}
			cs = append(cs, c)
		}
		s.conns = append(s.conns, cs)
	}
	return s, nil
}

// start connects agents until there are n, spread over the replicas.
func (s *sim) start(n int) {
	for i := len(s.agents); i < n; i++ {
		cs := s.conns[i%len(s.conns)]
		a := &simAgent{i: i, id: fmt.Sprintf("agent-%05d", i), conn: cs[(i/len(s.conns))%len(cs)], groups: s.groups(i)}
		for _, g := range a.groups {
			a.servers = append(a.servers, s.members[g]...)
		}
		s.agents = append(s.agents, a)
		s.wg.Go(func() { s.run(a) })
	}
}

// close ends every stream and waits for the agents' goroutines.
func (s *sim) close() {
	s.cancel()
	for _, cs := range s.conns {
		for _, c := range cs {
			c.Close()
		}
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
		Servers: a.servers, Groups: a.groups, ConfigHash: a.state.GetConfigHash(),
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
		recv := time.Now().UnixNano()
		a.rx.Add(int64(proto.Size(m)))
		snap := m.GetSnapshot()
		if snap == nil {
			continue // an Assignment: simulated agents probe nothing
		}
		if err := s.apply(a, snap, recv); err != nil {
			return err
		}
	}
}

// apply applies snap to the agent's state and ACKs it (NACKs it if it does
// not apply), then notes the round's progress.
func (s *sim) apply(a *simAgent, snap *hangarv1.Snapshot, recv int64) error {
	state, err := snapshot.Apply(a.state, snap)
	reply := &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: snap.GetVersion(), Nonce: snap.GetNonce()}}}
	if err != nil {
		reply = &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{Version: snap.GetVersion(), Nonce: snap.GetNonce(), Error: err.Error()}}}
	} else {
		if len(snap.GetFleetConfig()) > 0 { // keep one copy of the file for all the agents
			shared := snap.GetFleetConfig()
			if cur := s.fleet.Load(); cur != nil && bytes.Equal(*cur, shared) {
				shared = *cur
			} else {
				s.fleet.Store(&shared)
			}
			state.FleetConfig = shared
		}
		a.state = state
	}
	a.mu.Lock()
	err = a.stream.Send(reply)
	a.mu.Unlock()
	if err != nil || a.state != state {
		return err
	}
	now := time.Now().UnixNano()
	if a.latest.Swap(state.GetVersion()) == 0 {
		s.ready.Add(1)
	}
	if r := s.round.Load(); r != nil && r.want(state) && r.acked[a.i].CompareAndSwap(0, now) {
		r.recv[a.i].Store(recv)
		r.created.CompareAndSwap(0, state.GetCreated().AsTime().UnixNano())
		if r.n.Add(1) == int64(len(r.acked)) {
			close(r.all)
		}
	}
	return nil
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
func (s *sim) measure(ejected bool, want func(*hangarv1.Snapshot) bool, timeout time.Duration) ([]time.Duration, phases, error) {
	r := &round{want: want, acked: make([]atomic.Int64, len(s.agents)), recv: make([]atomic.Int64, len(s.agents)), all: make(chan struct{})}
	s.round.Store(r)
	defer s.round.Store(nil)
	start := time.Now()
	if err := s.agents[0].report(ejected); err != nil {
		return nil, phases{}, fmt.Errorf("send the report: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.all:
	case <-t.C:
	case <-s.ctx.Done():
		return nil, phases{}, s.ctx.Err()
	}
	out := make([]time.Duration, 0, len(r.acked))
	var recv []time.Duration
	for i := range r.acked {
		if at := r.acked[i].Load(); at != 0 {
			out = append(out, time.Duration(at-start.UnixNano()))
			recv = append(recv, time.Duration(r.recv[i].Load()-start.UnixNano()))
		}
	}
	return out, newPhases(time.Duration(r.created.Load()-start.UnixNano()), recv), nil
}

// phases splits a round's time from the report: until the leader decided
// (its snapshot's created time), until the first agent and 99 % of the
// agents received the snapshot (before applying and ACKing it).
type phases struct {
	DecidedMs   float64 `json:"decided_ms"`
	FirstRecvMs float64 `json:"first_received_ms"`
	P99RecvMs   float64 `json:"p99_received_ms"`
}

func newPhases(decided time.Duration, recv []time.Duration) phases {
	if len(recv) == 0 {
		return phases{DecidedMs: ms(decided)}
	}
	slices.Sort(recv)
	return phases{DecidedMs: ms(decided), FirstRecvMs: ms(recv[0]), P99RecvMs: ms(recv[min(len(recv)-1, len(recv)*99/100)])}
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

// waitQuiet waits until no agent received anything for quiet: the control
// plane has settled. (Agents do not all run the same version: one that
// changed none of an agent's groups is not sent to it.)
func (s *sim) waitQuiet(ctx context.Context, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, since := s.received(), time.Now()
	for {
		if cur := s.received(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agents still receive snapshots after %s", timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
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

// heartbeat sends a heartbeat report: the agent called every member of
// its groups in the last second, all fine.
func (a *simAgent) heartbeat() error {
	now := timestamppb.Now()
	r := &hangarv1.Report{At: now, Heartbeat: true}
	for _, m := range a.servers {
		r.Members = append(r.Members, &hangarv1.MemberReport{Member: m, State: hangarv1.MemberState_MEMBER_STATE_READY,
			Calls: map[string]uint64{"ok": 10}, LatencyBuckets: []uint64{0, 0, 0, 10}, LastCall: now})
	}
	for _, g := range a.groups {
		r.Groups = append(r.Groups, &hangarv1.GroupReport{Group: g, LastCall: now})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stream == nil {
		return fmt.Errorf("%s has no stream", a.id)
	}
	a.seq++
	r.Seq = a.seq
	return a.stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: r}})
}

// heartbeats makes every agent heartbeat once a second, spread over the
// second, for d.
func (s *sim) heartbeats(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	const workers = 64
	for w := range workers {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				for i := w; i < len(s.agents); i += workers {
					_ = s.agents[i].heartbeat() // a broken stream reconnects and shows in the counts
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// received returns the bytes the agents received so far.
func (s *sim) received() int64 {
	var n int64
	for _, a := range s.agents {
		n += a.rx.Load()
	}
	return n
}
