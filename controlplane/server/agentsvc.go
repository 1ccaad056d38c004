package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/clock"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// agentService implements hangar.v1.AgentService on one replica.
type agentService struct {
	hangarv1.UnimplementedAgentServiceServer
	hub   *hub
	log   *slog.Logger
	met   *Metrics
	clk   clock.Clock
	store *store.Store                                    // nil in unit tests: no relayed confirmations
	admit func(ctx context.Context, agentID string) error // nil admits every id
	// remote refuses an id another replica has connected from another
	// process (duplicate.go); nil checks this replica only.
	remote func(ctx context.Context, hello *hangarv1.Hello) error
}

// Connect serves one agent's stream: one goroutine receives, and handles
// every message after the Hello itself (no hop per message: each agent
// ACKs every snapshot and heartbeats every second); another, started
// while messages are queued (send), is the only one that calls Send; both
// end when the stream does.
func (s *agentService) Connect(stream hangarv1.AgentService_ConnectServer) error {
	ctx, kick := context.WithCancelCause(stream.Context())
	defer kick(nil)
	msgs := make(chan *hangarv1.AgentMessage) // the Hello
	ready := make(chan *agentConn, 1)         // the agent, once registered
	recvErr := make(chan error, 1)
	go func() {
		var c *agentConn
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if c != nil {
				if err := s.handle(c, m); err != nil {
					kick(err)
					return
				}
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
			select {
			case c = <-ready:
			case <-ctx.Done():
				return
			}
		}
	}()

	hello, err := s.awaitHello(ctx, msgs, recvErr)
	if err != nil {
		return err
	}
	if s.admit != nil {
		if err := s.admit(stream.Context(), hello.GetAgentId()); err != nil {
			s.log.Warn("agent_refused", "agent_id", hello.GetAgentId(), "peer", peerAddr(stream.Context()), "error", err.Error())
			return err
		}
	}
	if s.remote != nil {
		if err := s.remote(stream.Context(), hello); err != nil {
			s.log.Warn("agent_refused", "agent_id", hello.GetAgentId(), "peer", peerAddr(stream.Context()), "error", err.Error())
			return err
		}
	}
	c := &agentConn{
		id: hello.GetAgentId(), hello: hello, kick: kick, peer: peerAddr(stream.Context()),
		queue: make(chan *outMsg, queueSize), connected: s.clk.Now(), shard: shardOf(hello.GetAgentId()),
	}
	sendErr := make(chan error, 1)
	c.wake = func() {
		if c.sending.CompareAndSwap(false, true) {
			go s.send(ctx, stream, c, sendErr)
		}
	}
	if err := s.hub.add(c); err != nil {
		s.log.Warn("agent_refused", "agent_id", c.id, "peer", c.peer, "error", err.Error())
		return err
	}
	defer s.hub.remove(c)
	ready <- c
	s.log.Info("agent_connected", "agent_id", c.id, "host", hello.GetHost(), "version", hello.GetVersion(),
		"snapshot_version", hello.GetSnapshotVersion())
	defer s.log.Info("agent_disconnected", "agent_id", c.id)

	for {
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return nil
		case err := <-recvErr:
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		case err := <-sendErr:
			return err
		}
	}
}

// send sends the agent's queued messages until the queue is empty, then
// ends (an idle agent has no sending goroutine: c.wake starts one when a
// message is queued, and c.sending keeps it the only Send caller). A stuck
// agent blocks it in flow control, and only the handler's return (which
// ends the stream) unblocks it: so the handler must not send itself, or a
// kick could never take effect.
func (s *agentService) send(ctx context.Context, stream hangarv1.AgentService_ConnectServer, c *agentConn, sendErr chan<- error) {
	for {
		select {
		case <-ctx.Done():
			return
		case out := <-c.queue:
			pm, err := out.prepared(stream)
			if err == nil {
				err = stream.SendMsg(pm)
			}
			if err != nil {
				select {
				case sendErr <- err:
				default:
				}
				return // c.sending stays set: the stream ends
			}
			s.met.sentBytes.WithLabelValues(out.kind).Add(float64(out.size))
		default:
			c.sending.Store(false)
			// A message queued before the Store found c.sending set and
			// started no goroutine: take it on.
			if len(c.queue) == 0 || !c.sending.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// peerAddr is the network address of the stream's peer, "" if unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func (s *agentService) awaitHello(ctx context.Context, msgs <-chan *hangarv1.AgentMessage, recvErr <-chan error) (*hangarv1.Hello, error) {
	t := s.clk.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case m := <-msgs:
		h := m.GetHello()
		if h == nil {
			return nil, status.Error(codes.InvalidArgument, "hangar: the first message of a stream must be Hello")
		}
		if h.GetAgentId() == "" {
			return nil, status.Error(codes.InvalidArgument, "hangar: Hello.agent_id is empty: start the agent with --agent-id or let it default to the host name")
		}
		return h, nil
	case err := <-recvErr:
		return nil, err
	case <-t.C():
		return nil, status.Error(codes.DeadlineExceeded, "hangar: no Hello within 10s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handle processes one message from the agent.
func (s *agentService) handle(c *agentConn, m *hangarv1.AgentMessage) error {
	now := s.clk.Now()
	switch msg := m.GetMsg().(type) {
	case *hangarv1.AgentMessage_Report:
		c.mu.Lock()
		c.report, c.lastReport = msg.Report, now
		if msg.Report.GetHeartbeat() {
			c.minute.add(now, msg.Report.GetMembers())
		}
		changed := c.setStored(storedReport(msg.Report))
		c.mu.Unlock()
		s.met.reports.WithLabelValues(reportKind(msg.Report)).Inc()
		if changed {
			s.hub.markDirty(c)
		}
		if !msg.Report.GetHeartbeat() {
			s.hub.notify()
		}
		s.hub.called(c, msg.Report)
	case *hangarv1.AgentMessage_Ack:
		if s.hub.ack(c, msg.Ack.GetVersion()) {
			s.hub.acked(msg.Ack.GetVersion(), now)
			s.hub.push(c, nil, false)
		}
	case *hangarv1.AgentMessage_Nack:
		s.hub.nack(c, msg.Nack.GetVersion(), msg.Nack.GetError())
		s.hub.markDirty(c)
		s.met.nacks.Inc()
		s.log.Warn("snapshot_nacked", "agent_id", c.id, "version", msg.Nack.GetVersion(), "error", msg.Nack.GetError())
	case *hangarv1.AgentMessage_ConfirmResult:
		s.confirmed(c, msg.ConfirmResult, now)
	case *hangarv1.AgentMessage_Hello:
		return status.Error(codes.InvalidArgument, "hangar: Hello sent twice on one stream")
	default:
		return status.Error(codes.InvalidArgument, "hangar: empty AgentMessage")
	}
	return nil
}

func reportKind(r *hangarv1.Report) string {
	if r.GetHeartbeat() {
		return "heartbeat"
	}
	return "change"
}

// acked records convergence: from the snapshot's decision to this ACK.
func (h *hub) acked(version uint64, now time.Time) {
	if v := h.latest.Load(); v != nil && v.version == version && v.created != nil {
		h.met.convergence.Observe(now.Sub(v.created.AsTime()).Seconds())
	}
	// An ACK changes no decision, nor the reports published in etcd (they
	// carry the ACKed version as of their periodic refresh): every agent
	// ACKs every snapshot, and waking the leader or the publisher for each
	// would cost O(agents) work and etcd writes per snapshot.
}
