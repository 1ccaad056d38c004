package controlclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/hangarmesh/hangar/internal/clock"
	snapstate "github.com/hangarmesh/hangar/internal/snapshot"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// capabilities announced in Hello: 1 << each Capability value.
const capabilities = 1<<uint64(hangarv1.Capability_CAPABILITY_SNAPSHOTS) |
	1<<uint64(hangarv1.Capability_CAPABILITY_ASSIGNMENTS)

// errClosedByPeer is a stream the replica ended without an error status.
var errClosedByPeer = errors.New("controlclient: stream closed by the control plane")

// sessionResult is how one connection attempt ended.
type sessionResult struct {
	connected   bool          // the stream opened and Hello was sent
	lived       time.Duration // from Hello to the end of the stream
	gotSnapshot bool          // a snapshot arrived (applied or not)
	attached    bool          // the agent applied a snapshot or an assignment
	err         error         // why it ended; never nil unless ctx ended
}

// session dials endpoint, opens the stream and serves it until it breaks or
// ctx ends.
func (c *Client) session(ctx context.Context, endpoint string) sessionResult {
	cc, err := grpc.NewClient(endpoint, c.opts.DialOptions...)
	if err != nil {
		return sessionResult{err: fmt.Errorf("dial %s: %w", endpoint, err)}
	}
	defer cc.Close()
	if err := c.waitReady(ctx, cc); err != nil {
		return sessionResult{err: fmt.Errorf("connect %s: %w", endpoint, err)}
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := hangarv1.NewAgentServiceClient(cc).Connect(sctx)
	if err != nil {
		cancel()
		return sessionResult{err: fmt.Errorf("open stream to %s: %w", endpoint, err)}
	}

	// The receiver: the only goroutine that calls Recv. It stops when the
	// stream ends; this function cancels the stream and waits for it.
	recv := make(chan *hangarv1.ControlMessage)
	var recvErr error // written before recv is closed
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(recv)
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr = err
				return
			}
			select {
			case recv <- m:
			case <-sctx.Done():
				recvErr = sctx.Err()
				return
			}
		}
	})
	defer func() {
		cancel()
		wg.Wait()
	}()

	s := &link{c: c, stream: stream, recv: recv}
	c.obs.reset()
	if err := s.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: c.hello()}}); err != nil {
		return sessionResult{err: fmt.Errorf("send hello to %s: %w", endpoint, s.cause(err, &recvErr))}
	}
	opened := c.clock.Now()
	c.setConnected(endpoint)
	c.log.Info(evConnected, keyEndpoint, endpoint)
	err = s.serve(ctx)
	return sessionResult{connected: true, lived: c.clock.Now().Sub(opened), gotSnapshot: s.gotSnapshot,
		attached: s.attached, err: fmt.Errorf("stream to %s: %w", endpoint, s.cause(err, &recvErr))}
}

// waitReady connects cc and waits until the replica accepted the connection
// or refused it (gRPC then fails the stream at once with the reason), for
// at most dialTimeout on the Client's clock.
func (c *Client) waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	t := c.clock.NewTimer(dialTimeout)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-t.C():
			cancel(fmt.Errorf("no answer within %v", dialTimeout))
		case <-ctx.Done():
		}
	})
	defer func() {
		t.Stop()
		cancel(nil)
		wg.Wait()
	}()
	cc.Connect()
	for {
		st := cc.GetState()
		if st == connectivity.Ready || st == connectivity.TransientFailure {
			return nil
		}
		if !cc.WaitForStateChange(ctx, st) {
			return context.Cause(ctx)
		}
	}
}

func (c *Client) hello() *hangarv1.Hello {
	applied, _ := c.appliedVersion()
	return &hangarv1.Hello{
		AgentId:         c.opts.AgentID,
		Host:            c.opts.Host,
		Labels:          c.opts.Labels,
		Version:         c.opts.Version,
		Capabilities:    capabilities,
		SnapshotVersion: applied,
		Servers:         c.agent.Servers(),
		ConfigSource:    c.opts.ConfigSource,
		ConfigSha256:    c.opts.ConfigSHA256,
		Instance:        c.opts.Instance,
		ConfigHash:      c.heldState().GetConfigHash(),
		Groups:          c.opts.Groups,
	}
}

// link is one open stream. serve runs in the session's goroutine, the
// only one that calls Send.
type link struct {
	c           *Client
	stream      grpc.BidiStreamingClient[hangarv1.AgentMessage, hangarv1.ControlMessage]
	recv        <-chan *hangarv1.ControlMessage
	seq         uint64
	gotSnapshot bool
	attached    bool
	confirms    *confirms // confirmation probes asked on this stream
}

// serve sends the first report, then handles messages, edge-triggered
// reports and heartbeats until the stream breaks or ctx ends.
func (s *link) serve(ctx context.Context) error {
	c := s.c
	if err := s.sendReport(false); err != nil {
		return err
	}
	heartbeat := c.clock.NewTimer(c.heartbeat)
	var edge clock.Timer
	var edgeC <-chan time.Time
	ctx, cancel := context.WithCancel(ctx)
	s.confirms = newConfirms()
	defer func() {
		cancel()
		s.confirms.wait()
		heartbeat.Stop()
		if edge != nil {
			edge.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-s.recv:
			if !ok {
				return io.EOF // the cause is in recvErr
			}
			if p := m.GetConfirmProbe(); p != nil {
				s.confirms.start(ctx, c.agent, p)
				continue
			}
			if err := s.handle(m); err != nil {
				return err
			}
		case res := <-s.confirms.results:
			if err := s.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_ConfirmResult{ConfirmResult: res}}); err != nil {
				return err
			}
		case <-c.obs.changed:
			if edge == nil {
				edge = c.clock.NewTimer(coalesce)
				edgeC = edge.C()
			}
		case <-edgeC:
			edge, edgeC = nil, nil
			if err := s.sendReport(false); err != nil {
				return err
			}
		case <-heartbeat.C():
			if edge != nil { // the heartbeat carries the change too
				edge.Stop()
				edge, edgeC = nil, nil
			}
			if err := s.sendReport(true); err != nil {
				return err
			}
			heartbeat = c.clock.NewTimer(c.heartbeat)
		}
	}
}

// handle applies one message from the control plane.
func (s *link) handle(m *hangarv1.ControlMessage) error {
	switch msg := m.Msg.(type) {
	case *hangarv1.ControlMessage_Snapshot:
		s.gotSnapshot = true
		reply, applied := s.c.applySnapshot(msg.Snapshot)
		s.attached = s.attached || applied
		if reply != nil {
			return s.send(reply)
		}
	case *hangarv1.ControlMessage_Assignment:
		s.attached = true
		s.c.log.Debug(evAssignment, keyVersion, msg.Assignment.GetVersion(), keyMembers, msg.Assignment.GetProbe())
		s.c.agent.AssignProbes(msg.Assignment.GetProbe())
	}
	return nil
}

// sendReport sends the local view as it is now, which covers every state
// change noted so far.
func (s *link) sendReport(heartbeat bool) error {
	select {
	case <-s.c.obs.changed:
	default:
	}
	s.seq++
	return s.send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: s.c.report(s.seq, heartbeat)}})
}

func (s *link) send(m *hangarv1.AgentMessage) error { return s.stream.Send(m) }

// cause turns the error that ended the stream into the one worth logging:
// Send reports a broken stream as io.EOF and leaves the status to Recv, so
// wait for the receiver to finish and take its error.
func (s *link) cause(err error, recvErr *error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for range s.recv { // drain until the receiver has stored its error
	}
	if errors.Is(*recvErr, io.EOF) || *recvErr == nil {
		return errClosedByPeer
	}
	return *recvErr
}

// applySnapshot applies s (a full snapshot or a delta against the state
// held) unless the agent runs it or a newer one already, saves the full
// state it makes, and returns the Ack or Nack to send (nil to send
// nothing) and whether the agent applied it.
func (c *Client) applySnapshot(s *hangarv1.Snapshot) (*hangarv1.AgentMessage, bool) {
	v, nonce := s.GetVersion(), s.GetNonce()
	applied, stale := c.appliedVersion()
	switch {
	case v < applied:
		// NACKed, not left unanswered: the control plane keeps one
		// snapshot in flight per agent and sends nothing more until it is
		// answered. A NACK makes its next one full, built from scratch, so
		// the agent's state never mixes a delta based on a version it does
		// not run (a replica behind, or a state dir newer than the
		// replica's latest).
		c.log.Info(evSnapshotOld, keyVersion, v, keyApplied, applied, keyNonce, nonce)
		return nackMsg(v, nonce, fmt.Sprintf("snapshot version %d is older than the running version %d", v, applied)), false
	case v == applied && applied != 0 && !stale && !s.GetDelta():
		// Same version, same content (the version is the etcd revision
		// that wrote it): the agent runs it already.
		return ack(v, nonce), false
	}
	full, err := snapstate.Apply(c.heldState(), s)
	if err == nil {
		err = c.agent.ApplySnapshot(full)
	}
	if err != nil {
		c.log.Warn(evSnapshotNacked, keyVersion, v, keyNonce, nonce, keyError, err.Error())
		return nackMsg(v, nonce, err.Error()), false
	}
	c.setApplied(full, c.clock.Now())
	c.log.Info(evSnapshot, keyVersion, v, keyNonce, nonce, keyDelta, s.GetDelta(), keyGroups, groupIDs(s))
	if c.opts.StateDir != "" {
		if err := saveState(c.opts.StateDir, full); err != nil {
			// The agent runs the snapshot, so it is ACKed; only a restart
			// without a control plane would miss it.
			c.log.Error(evStateWrite, keyVersion, v, keyError, err.Error())
		}
	}
	return ack(v, nonce), true
}

// groupIDs lists the groups whose state s sets.
func groupIDs(s *hangarv1.Snapshot) []string {
	out := make([]string, 0, len(s.GetGroups()))
	for _, g := range s.GetGroups() {
		out = append(out, g.GetId())
	}
	return out
}

func nackMsg(version uint64, nonce, reason string) *hangarv1.AgentMessage {
	return &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{Version: version, Nonce: nonce, Error: reason}}}
}

func ack(version uint64, nonce string) *hangarv1.AgentMessage {
	return &hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: version, Nonce: nonce}}}
}
