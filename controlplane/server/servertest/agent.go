package servertest

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/internal/snapshot"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Agent is a simulated hangar-agent: a raw Connect stream. Unless it was
// told not to read, a goroutine records what the control plane sends and,
// unless told otherwise, ACKs every snapshot. Its methods are safe for
// concurrent use.
type Agent struct {
	t      *testing.T
	ID     string
	stream hangarv1.AgentService_ConnectClient
	cancel context.CancelFunc
	done   chan struct{} // closed when the receiver ends
	noRead bool          // never reads its stream
	// confirm answers confirmation probes; nil leaves them unanswered.
	confirm func(*hangarv1.ConfirmProbe) *hangarv1.ConfirmResult

	sendMu sync.Mutex // one Send at a time: the receiver ACKs, the test reports
	seq    uint64

	mu     sync.Mutex
	state  *hangarv1.Snapshot // the full state the snapshots so far make
	snaps  []Received
	assign *hangarv1.Assignment
	err    error // why the stream ended; nil while it is open
}

// Received is a snapshot and when the agent read it: Snap is the full
// state the agent holds once it is applied, Wire the message as sent (a
// full snapshot or a delta).
type Received struct {
	Snap *hangarv1.Snapshot
	Wire *hangarv1.Snapshot
	At   time.Time
	Err  error // the snapshot does not apply to the state held (a NACK)
}

// AgentOptions change how a simulated agent behaves. The zero value reads
// and ACKs, serves both members, over the replica's shared connection.
type AgentOptions struct {
	Conn    *grpc.ClientConn  // nil: the replica's shared connection
	NoAck   bool              // never ACK (the test ACKs or NACKs itself)
	NoRead  bool              // never read the stream (a stuck agent)
	Servers []string          // nil: Members
	Labels  map[string]string // sent in Hello
	Token   string            // bearer token sent with the stream; "" none
	// Instance, ConfigSource and ConfigSHA256 go into Hello.
	Instance, ConfigSource, ConfigSHA256 string
	Groups                               []string // sent in Hello: the groups it serves
	// ConfigHash is sent in Hello: the hash of the fleet file it holds.
	ConfigHash string
	// Compressor compresses what the agent sends ("" none); the replica
	// answers in kind. Its package must be imported (gzip: encoding/gzip).
	Compressor string
	// Confirm, if set, answers every confirmation probe received (the
	// result's Id is set to the probe's); nil leaves them unanswered.
	Confirm func(*hangarv1.ConfirmProbe) *hangarv1.ConfirmResult
}

// Connect opens agent id's stream to r and sends its Hello. The stream is
// closed, and its receiver waited for, when the test ends.
func (r *Replica) Connect(t *testing.T, id string, o AgentOptions) *Agent {
	t.Helper()
	if o.Conn == nil {
		o.Conn = r.Conn
	}
	if o.Servers == nil {
		o.Servers = Members
	}
	ctx, cancel := context.WithCancel(context.Background())
	if o.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	}
	var opts []grpc.CallOption
	if o.Compressor != "" {
		opts = append(opts, grpc.UseCompressor(o.Compressor))
	}
	stream, err := hangarv1.NewAgentServiceClient(o.Conn).Connect(ctx, opts...)
	if err != nil {
		cancel()
		t.Fatalf("connect %s to %s: %v", id, r.Name, err)
	}
	a := &Agent{t: t, ID: id, stream: stream, cancel: cancel, done: make(chan struct{}), noRead: o.NoRead, confirm: o.Confirm}
	t.Cleanup(a.Close)
	hello := &hangarv1.Hello{AgentId: id, Host: "host-" + id, Version: "test", Servers: o.Servers, Labels: o.Labels,
		Capabilities: 1<<hangarv1.Capability_CAPABILITY_SNAPSHOTS | 1<<hangarv1.Capability_CAPABILITY_ASSIGNMENTS,
		Instance:     o.Instance, ConfigSource: o.ConfigSource, ConfigSha256: o.ConfigSHA256,
		Groups: o.Groups, ConfigHash: o.ConfigHash}
	// io.EOF: the server already ended the stream (refused it); the
	// receiver records why.
	if err := a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Hello{Hello: hello}}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s: send Hello: %v", id, err)
	}
	if o.NoRead {
		close(a.done)
	} else {
		go a.receive(!o.NoAck)
	}
	return a
}

// Close ends the stream and waits for the receiver. It may be called more
// than once.
func (a *Agent) Close() {
	a.cancel()
	<-a.done
}

func (a *Agent) receive(ack bool) {
	defer close(a.done)
	for {
		m, err := a.stream.Recv()
		if err != nil {
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		now := time.Now()
		switch msg := m.GetMsg().(type) {
		case *hangarv1.ControlMessage_Snapshot:
			s := msg.Snapshot
			a.mu.Lock()
			state, err := snapshot.Apply(a.state, s)
			if err == nil {
				a.state = state
			}
			a.snaps = append(a.snaps, Received{Snap: state, Wire: s, At: now, Err: err})
			a.mu.Unlock()
			// An error sending ends the stream, which Recv reports next.
			switch {
			case err != nil:
				_ = a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Nack{Nack: &hangarv1.Nack{Version: s.GetVersion(), Nonce: s.GetNonce(), Error: err.Error()}}})
			case ack:
				_ = a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Ack{Ack: &hangarv1.Ack{Version: s.GetVersion(), Nonce: s.GetNonce()}}})
			}
		case *hangarv1.ControlMessage_Assignment:
			a.mu.Lock()
			a.assign = msg.Assignment
			a.mu.Unlock()
		case *hangarv1.ControlMessage_ConfirmProbe:
			if a.confirm != nil {
				res := a.confirm(msg.ConfirmProbe)
				res.Id = msg.ConfirmProbe.GetId()
				_ = a.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_ConfirmResult{ConfirmResult: res}})
			}
		}
	}
}

// Send sends m on the stream.
func (a *Agent) Send(m *hangarv1.AgentMessage) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.stream.Send(m)
}

// Recv reads the stream; only for an agent connected with NoRead.
func (a *Agent) Recv() (*hangarv1.ControlMessage, error) {
	return a.stream.Recv()
}

// Reads reports whether the agent reads its stream (it was not connected
// with NoRead).
func (a *Agent) Reads() bool { return !a.noRead }

// Report sends a change report (not a heartbeat) with these members.
func (a *Agent) Report(ms ...*hangarv1.MemberReport) {
	a.t.Helper()
	a.ReportGroups(false, nil, ms...)
}

// ReportGroups sends a report: a heartbeat (whose calls count in the
// minute window) or a change report, with these groups and members.
func (a *Agent) ReportGroups(heartbeat bool, groups []*hangarv1.GroupReport, ms ...*hangarv1.MemberReport) {
	a.t.Helper()
	a.sendMu.Lock()
	a.seq++
	r := &hangarv1.Report{Seq: a.seq, At: timestamppb.Now(), Heartbeat: heartbeat, Members: ms, Groups: groups}
	err := a.stream.Send(&hangarv1.AgentMessage{Msg: &hangarv1.AgentMessage_Report{Report: r}})
	a.sendMu.Unlock()
	if err != nil {
		a.t.Fatalf("%s: send Report: %v", a.ID, err)
	}
}

// Mark is a position in the agent's received snapshots.
func (a *Agent) Mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.snaps)
}

// Snapshots returns a copy of the snapshots received so far.
func (a *Agent) Snapshots() []Received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.snaps)
}

// Latest is the last snapshot received, nil if none.
func (a *Agent) Latest() *hangarv1.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.snaps) == 0 {
		return nil
	}
	return a.snaps[len(a.snaps)-1].Snap
}

// Assignment is the last assignment received, nil if none.
func (a *Agent) Assignment() *hangarv1.Assignment {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.assign
}

// StreamErr is why the stream ended, nil while it is open.
func (a *Agent) StreamErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Await waits for a snapshot received after mark that satisfies ok. It
// fails the test if the stream ends first.
func (a *Agent) Await(what string, mark int, ok func(*hangarv1.Snapshot) bool) Received {
	a.t.Helper()
	var got Received
	Eventually(a.t, a.ID+": "+what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, r := range a.snaps[min(mark, len(a.snaps)):] {
			if r.Err == nil && ok(r.Snap) {
				got = r
				return true
			}
		}
		if a.err != nil {
			a.t.Fatalf("%s: stream ended while waiting for %s: %v", a.ID, what, a.err)
		}
		return false
	})
	return got
}
