package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/hangarmesh/hangar/dataplane/outcome"
)

// A Session is one client's own MCP session on a member, for the front
// door (docs/design.md §3.2): opened with that client's initialize params,
// carrying raw JSON-RPC both ways. Requests get the session's own ids; the
// member's notifications and requests go to the Handler with the tag of
// the call they came with. It is safe for concurrent use.
type Session struct {
	c    *Client
	h    Handler
	w    wire
	init json.RawMessage

	result  json.RawMessage // the member's initialize result
	version string

	nextID  atomic.Int64
	mu      sync.Mutex
	pending map[int64]*pendingCall
	// asking holds the member's requests the Handler has not answered yet
	// (sampling, elicitation, roots: the client's turn), each with the call
	// whose stream carried it (0: none). While any is open the member is
	// waiting, not silent: the calls' read_timeout does not run.
	asking  map[jsonrpc.ID]int64
	dead    chan struct{}
	err     error
	closing bool
	wg      sync.WaitGroup
}

// Handler receives what a member sends on a Session besides answers. tag is
// the tag of the Call whose stream carried msg (nil when unknown). Methods
// must not block for long: they run on the session's reader.
type Handler interface {
	// FromMember gets a notification or a request (msg.IsCall()) of the member.
	FromMember(s *Session, msg *jsonrpc.Request, tag any)
	// SessionClosed is called once when the session ends for a reason other
	// than Close (the member died, forgot the session, broke the stream).
	SessionClosed(s *Session, err error)
}

type pendingCall struct {
	tag  any
	resp chan *jsonrpc.Response
	errc chan error
	poke chan struct{}
}

// ErrSessionLost means the member does not know the session (HTTP 404, as
// the spec says, or 400 naming the session id, as popular servers answer
// after a restart): it did not run the request. Open a new session and send
// the request once more.
var ErrSessionLost = errors.New("upstream: session lost (the member restarted or forgot it)")

// OpenSession opens a session on the member with a client's initialize
// params (protocol version, capabilities, client info) and sends
// notifications/initialized. It is bounded by the member's connect and
// read timeouts. An error wraps outcome.ErrNotDelivered unless the member
// answered initialize with a JSON-RPC error.
func (c *Client) OpenSession(ctx context.Context, init json.RawMessage, h Handler) (*Session, error) {
	if c.isClosed() {
		return nil, fmt.Errorf("member %s is shut down: %w", c.srv.ID, outcome.ErrNotDelivered)
	}
	ctx, cancel := context.WithTimeout(ctx, c.srv.HTTP.ConnectTimeout+c.srv.HTTP.ReadTimeout)
	defer cancel()
	s := &Session{c: c, h: h, init: init, pending: map[int64]*pendingCall{}, asking: map[jsonrpc.ID]int64{}, dead: make(chan struct{})}
	w, err := c.newWire(ctx, s)
	if err != nil {
		return nil, err
	}
	s.w = w
	res, err := s.Call(ctx, "initialize", init, nil)
	if err != nil {
		s.Close()
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) {
			return nil, err
		}
		return nil, fmt.Errorf("initialize on %s: %w: %w", c.srv.ID, outcome.ErrNotDelivered, err)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(res, &ir)
	s.result, s.version = res, ir.ProtocolVersion
	s.w.initialized(ir.ProtocolVersion)
	if err := s.Notify(ctx, "notifications/initialized", nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("initialized on %s: %w: %w", c.srv.ID, outcome.ErrNotDelivered, err)
	}
	c.opts.Logger.Debug("client_session_opened", "mcp_server", c.srv.ID, "protocol_version", ir.ProtocolVersion)
	return s, nil
}

// Member returns the member's server id.
func (s *Session) Member() string { return s.c.srv.ID }

// Client returns the member's client.
func (s *Session) Client() *Client { return s.c }

// InitializeResult returns the member's raw answer to initialize.
func (s *Session) InitializeResult() json.RawMessage { return s.result }

// Alive reports whether the session can still be used.
func (s *Session) Alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// Call sends a request and waits for the member's answer: the raw result,
// a *jsonrpc.Error, or a transport error (ErrSessionLost when the member
// forgot the session). The member's read timeout bounds the silence, not
// the call: any message the member sends on the session restarts it. When
// ctx ends first, the member gets notifications/cancelled. tag goes with
// the messages the member sends on this call's stream.
//
// The request may be sent twice on a broken kept-alive connection only
// when Repeatable(method): use CallOnce for a tools/call.
func (s *Session) Call(ctx context.Context, method string, params json.RawMessage, tag any) (json.RawMessage, error) {
	return s.call(ctx, method, params, tag, Repeatable(method))
}

// CallOnce is Call, with repeatable saying whether the member may run the
// request twice (a tool annotated read-only or idempotent, or listed in
// failover.retry_on): when false, a request the transport may have
// written is never sent again.
func (s *Session) CallOnce(ctx context.Context, method string, params json.RawMessage, tag any, repeatable bool) (json.RawMessage, error) {
	return s.call(ctx, method, params, tag, repeatable)
}

// Repeatable reports whether a request with method is safe to send twice:
// initialize, ping and the methods that read or set idempotent state.
// tools/call and methods it does not know are not.
func Repeatable(method string) bool {
	switch method {
	case "initialize", "ping", "tools/list", "resources/list", "resources/templates/list", "resources/read",
		"prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
		"resources/subscribe", "resources/unsubscribe":
		return true
	}
	return false
}

func (s *Session) call(ctx context.Context, method string, params json.RawMessage, tag any, repeatable bool) (json.RawMessage, error) {
	id := s.nextID.Add(1)
	pc := &pendingCall{tag: tag, resp: make(chan *jsonrpc.Response, 1), errc: make(chan error, 1), poke: make(chan struct{}, 1)}
	s.mu.Lock()
	if err := s.deadErr(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.pending[id] = pc
	s.mu.Unlock()
	defer s.forget(id)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rid, _ := jsonrpc.MakeID(float64(id))
	req := &jsonrpc.Request{ID: rid, Method: method, Params: params}
	if err := s.w.send(cctx, req, id, repeatable); err != nil {
		if errors.Is(err, ErrSessionLost) {
			s.fail(err, false)
		}
		if ctx.Err() != nil { // the request may be running: the member waits for its answer's headers
			s.cancelUpstream(id, "the client cancelled the request")
			return nil, ctx.Err()
		}
		return nil, err
	}
	silence := s.c.srv.HTTP.ReadTimeout
	t := s.c.opts.Clock.NewTimer(silence)
	defer func() { t.Stop() }()
	for {
		select {
		case r := <-pc.resp:
			if r.Error != nil {
				return nil, r.Error
			}
			return r.Result, nil
		case err := <-pc.errc:
			return nil, err
		case <-pc.poke:
			t.Stop()
			t = s.c.opts.Clock.NewTimer(silence)
		case <-s.dead:
			return nil, s.deadErr()
		case <-t.C():
			if s.waitingOnClient() { // the member waits for the client: not its silence
				t = s.c.opts.Clock.NewTimer(silence)
				continue
			}
			s.cancelUpstream(id, "no answer within read_timeout")
			return nil, fmt.Errorf("%s: %s: no message for %s (read_timeout): %w", s.c.srv.ID, method, silence, context.DeadlineExceeded)
		case <-ctx.Done():
			s.cancelUpstream(id, "the client cancelled the request")
			return nil, ctx.Err()
		}
	}
}

// cancelUpstream tells the member to stop working on request id.
func (s *Session) cancelUpstream(id int64, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": reason})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Notify(ctx, "notifications/cancelled", params)
	s.c.opts.Logger.Debug("upstream_request_cancelled", "mcp_server", s.c.srv.ID, "id", id, "reason", reason, "error", errString(err))
}

// Notify sends a notification.
func (s *Session) Notify(ctx context.Context, method string, params json.RawMessage) error {
	if err := s.deadErr(); err != nil {
		return err
	}
	return s.w.send(ctx, &jsonrpc.Request{Method: method, Params: params}, 0, true) // a notification twice does no harm
}

// Respond answers a request of the member (id as the member sent it) with a
// raw result or an error.
func (s *Session) Respond(ctx context.Context, id jsonrpc.ID, result json.RawMessage, rerr error) error {
	s.answered(id)
	if err := s.deadErr(); err != nil {
		return err
	}
	return s.w.send(ctx, &jsonrpc.Response{ID: id, Result: result, Error: rerr}, 0, true) // a second answer to an id is ignored
}

// waitingOnClient reports whether a request of the member waits for the
// Handler's answer.
func (s *Session) waitingOnClient() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.asking) > 0
}

// answered closes the member's request id (answered, or cancelled by the
// member). When it was the last one, the calls' silence starts again.
func (s *Session) answered(id jsonrpc.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.asking[id]; !ok {
		return
	}
	delete(s.asking, id)
	if len(s.asking) == 0 {
		s.pokeLocked()
	}
}

// pokeLocked restarts every call's silence timer. s.mu is held.
func (s *Session) pokeLocked() {
	for _, p := range s.pending {
		select {
		case p.poke <- struct{}{}:
		default:
		}
	}
}

// Close ends the session (HTTP DELETE; a subprocess child is stopped) and
// waits for its readers, giving the member closeTimeout to take the DELETE.
// The Handler is not told.
func (s *Session) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	s.CloseContext(ctx)
}

// closeTimeout bounds the DELETE of a session that Close sends.
const closeTimeout = 2 * time.Second

// CloseContext is Close with ctx bounding the DELETE: sessions closed
// together share one deadline, and a member that never answers costs it
// once, not once per session.
func (s *Session) CloseContext(ctx context.Context) {
	s.fail(errors.New("upstream: session closed"), true)
	if s.w != nil {
		s.w.close(ctx)
	}
	s.wg.Wait()
}

func (s *Session) deadErr() error {
	select {
	case <-s.dead:
		return s.err
	default:
		return nil
	}
}

// fail ends the session once; the handler hears of it unless closing.
func (s *Session) fail(err error, closing bool) {
	s.mu.Lock()
	select {
	case <-s.dead:
		s.mu.Unlock()
		return
	default:
	}
	s.err, s.closing = err, closing
	close(s.dead)
	s.mu.Unlock()
	if !closing && s.h != nil {
		s.c.opts.Logger.Debug("client_session_lost", "mcp_server", s.c.srv.ID, "error", err.Error())
		s.h.SessionClosed(s, err)
	}
}

// forget ends call id; the member's requests that came on its stream die
// with it.
func (s *Session) forget(id int64) {
	s.mu.Lock()
	delete(s.pending, id)
	for req, via := range s.asking {
		if via == id {
			delete(s.asking, req)
		}
	}
	s.mu.Unlock()
}

// deliver takes one message of the member; via is the call whose stream
// carried it (0: the standalone stream or a stdio pipe).
func (s *Session) deliver(msg jsonrpc.Message, via int64) {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		id, ok := m.ID.Raw().(int64)
		if !ok {
			return
		}
		s.mu.Lock()
		pc := s.pending[id]
		s.mu.Unlock()
		if pc != nil {
			select {
			case pc.resp <- m:
			default:
			}
		}
	case *jsonrpc.Request:
		var tag any
		s.mu.Lock()
		pc := s.pending[via]
		if pc == nil && len(s.pending) == 1 {
			for id, only := range s.pending { // a stdio pipe: the one call running
				pc, via = only, id
			}
		}
		if pc == nil {
			via = 0
		}
		if m.IsCall() {
			s.asking[m.ID] = via
		} else if m.Method == "notifications/cancelled" {
			s.cancelledByMember(m.Params)
		}
		s.pokeLocked() // the member is alive: restart every silence timer
		s.mu.Unlock()
		if pc != nil {
			tag = pc.tag
		}
		if s.h != nil {
			s.h.FromMember(s, m, tag)
		}
	}
}

// cancelledByMember closes the member's request that params (of its
// notifications/cancelled) name. s.mu is held.
func (s *Session) cancelledByMember(params json.RawMessage) {
	var p struct {
		RequestID any `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	if id, err := jsonrpc.MakeID(p.RequestID); err == nil {
		delete(s.asking, id)
	}
}

// callFailed ends call id with err (its stream broke before the answer).
func (s *Session) callFailed(id int64, err error) {
	s.mu.Lock()
	pc := s.pending[id]
	s.mu.Unlock()
	if pc != nil {
		select {
		case pc.errc <- err:
		default:
		}
	}
}

// wire is how a session's messages travel: Streamable HTTP or a child's stdio.
type wire interface {
	// send writes one message; for a request, call is its id (answers and
	// messages on its stream are delivered to the session).
	// repeatable lets the transport send it again when a kept-alive
	// connection broke after it may have been written.
	send(ctx context.Context, msg jsonrpc.Message, call int64, repeatable bool) error
	// initialized is called once the member answered initialize.
	initialized(version string)
	// close ends the session; ctx bounds telling the member (HTTP DELETE).
	close(ctx context.Context)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
