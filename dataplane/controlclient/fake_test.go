package controlclient

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/testutil"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// wait bounds every wait on the code under test; it only fails a stuck test.
const wait = 10 * time.Second

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeCP is an in-test AgentService on loopback. Each Connect stream is
// handed to the test through streams.
type fakeCP struct {
	hangarv1.UnimplementedAgentServiceServer
	addr    string
	streams chan *fakeStream
	wg      sync.WaitGroup // the streams' receivers
}

// fakeStream is one agent stream as the fake control plane sees it.
type fakeStream struct {
	in  chan *hangarv1.AgentMessage   // what the agent sent
	out chan *hangarv1.ControlMessage // what the test sends
	end chan struct{}                 // closed by the test to break the stream
}

func startCP(t *testing.T) *fakeCP {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCP{addr: lis.Addr().String(), streams: make(chan *fakeStream, 16)}
	srv := grpc.NewServer()
	hangarv1.RegisterAgentServiceServer(srv, f)
	var serving sync.WaitGroup
	serving.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() {
		srv.Stop()
		serving.Wait()
		f.wg.Wait()
	})
	return f
}

func (f *fakeCP) Connect(s hangarv1.AgentService_ConnectServer) error {
	fs := &fakeStream{in: make(chan *hangarv1.AgentMessage, 64), out: make(chan *hangarv1.ControlMessage),
		end: make(chan struct{})}
	ctx := s.Context()
	// Recv returns once the handler has returned, so the receiver is
	// waited for by the test's cleanup, not here.
	f.wg.Go(func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			select {
			case fs.in <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	select {
	case f.streams <- fs:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		select {
		case m := <-fs.out:
			if err := s.Send(m); err != nil {
				return err
			}
		case <-fs.end:
			return status.Error(codes.Unavailable, "replica going away")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// accept returns the next stream an agent opened.
func (f *fakeCP) accept(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case fs := <-f.streams:
		return fs
	case <-time.After(wait):
		t.Fatal("no agent stream")
		return nil
	}
}

// next returns the next message the agent sent on fs.
func (fs *fakeStream) next(t *testing.T) *hangarv1.AgentMessage {
	t.Helper()
	select {
	case m := <-fs.in:
		return m
	case <-time.After(wait):
		t.Fatal("no message from the agent")
		return nil
	}
}

func (fs *fakeStream) send(t *testing.T, m *hangarv1.ControlMessage) {
	t.Helper()
	select {
	case fs.out <- m:
	case <-time.After(wait):
		t.Fatal("stream does not take messages")
	}
}

// hello and report accept the next message as that kind, or fail.
func (fs *fakeStream) hello(t *testing.T) *hangarv1.Hello {
	t.Helper()
	m := fs.next(t)
	if m.GetHello() == nil {
		t.Fatalf("got %v, want Hello", m)
	}
	return m.GetHello()
}

func (fs *fakeStream) report(t *testing.T) *hangarv1.Report {
	t.Helper()
	m := fs.next(t)
	if m.GetReport() == nil {
		t.Fatalf("got %v, want Report", m)
	}
	return m.GetReport()
}

// fakeAgent records what the Client asks of it.
type fakeAgent struct {
	mu       sync.Mutex
	applied  []uint64 // versions passed to ApplySnapshot
	fail     map[uint64]error
	assigned [][]string
	detaches int
	members  []router.MemberView
	groups   []router.GroupView
}

func (a *fakeAgent) ApplySnapshot(s *hangarv1.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = append(a.applied, s.GetVersion())
	return a.fail[s.GetVersion()]
}

func (a *fakeAgent) AssignProbes(members []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.assigned = append(a.assigned, slices.Clone(members))
}

func (a *fakeAgent) Detach() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.detaches++
}

func (a *fakeAgent) LocalView() ([]router.MemberView, []router.GroupView) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.members), slices.Clone(a.groups)
}

func (a *fakeAgent) Servers() []string { return []string{"my-mcp", "my-mcp-backup"} }

func (a *fakeAgent) setView(m []router.MemberView, g []router.GroupView) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members, a.groups = m, g
}

func (a *fakeAgent) detachCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.detaches
}

func (a *fakeAgent) appliedVersions() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.applied)
}

// harness runs a Client against endpoints with a fake clock.
type harness struct {
	c     *Client
	agent *fakeAgent
	clk   *clock.Fake
	logs  *testutil.LogBuffer
	stop  func() error // cancels Run and returns its error
}

// run starts a Client on endpoints; opts and hooks, if not nil, adjust the
// options and the client (test hooks) before Run.
func run(t *testing.T, endpoints []string, opts func(*Options), hooks func(*Client)) *harness {
	t.Helper()
	h := &harness{agent: &fakeAgent{}, clk: clock.NewFake(epoch), logs: &testutil.LogBuffer{}}
	o := Options{
		Endpoints: endpoints, AgentID: "agent-1", Host: "host-a", Version: "1.2.3",
		Labels:      map[string]string{"zone": "eu-1"},
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Clock:       h.clk,
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if opts != nil {
		opts(&o)
	}
	h.c = New(h.agent, o)
	if hooks != nil {
		hooks(h.c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = h.c.Run(ctx) })
	h.stop = sync.OnceValue(func() error {
		cancel()
		wg.Wait()
		return runErr
	})
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

var errApply = errors.New("group g: member x unknown")
