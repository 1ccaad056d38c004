package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"golang.org/x/sync/errgroup"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/dataplane/upstream"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// outbox delivers messages to a client. related is the client request a
// message belongs to (invalid when none): an HTTP client gets it on that
// request's stream while it is open.
type outbox interface {
	send(msg jsonrpc.Message, related jsonrpc.ID)
}

// clientSession is one client's session with the front door: an HTTP
// Mcp-Session-Id or a stdio connection. It owns the client's sessions on
// the members (opened lazily with the client's initialize params) and the
// state to replay when a call moves to another member.
type clientSession struct {
	id     string // Mcp-Session-Id over HTTP; a fresh id per stdio connection
	g      *Gateway
	out    outbox
	ctx    context.Context // ends when the session closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // request handlers and background work

	mu      sync.Mutex
	init    json.RawMessage // the client's initialize params
	ups     map[string]*upstream.Session
	opening map[string]chan struct{}
	running map[string]context.CancelFunc // client requests in flight, by id
	asked   map[int64]asked               // member requests waiting for the client, by the id the client sees
	nextAsk int64
	level   json.RawMessage   // the last logging/setLevel params
	subs    map[string]string // subscribed resource URI → group
	// subsOn is, per group, the upstream session holding the client's
	// subscriptions there: one member at a time, so a change reaches the
	// client once (the session the client's calls left gives them up).
	subsOn  map[string]*upstream.Session
	routes  routes // from the client's last lists
	lastUse time.Time
	ready   bool // initialize answered: notifications may follow
	closed  bool
}

// asked is a member's request relayed to the client.
type asked struct {
	us *upstream.Session
	id jsonrpc.ID // as the member sent it
}

// routes map what a client saw in its lists to the group that offers it.
type routes struct {
	tools, prompts map[string]target // exposed name → group and the member's name
	resources      map[string]string // URI → group
}

type target struct{ group, name string }

func (g *Gateway) newSession(id string, out outbox) *clientSession {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &clientSession{id: id, g: g, out: out, ctx: ctx, cancel: cancel,
		ups: map[string]*upstream.Session{}, opening: map[string]chan struct{}{},
		running: map[string]context.CancelFunc{}, asked: map[int64]asked{}, subs: map[string]string{},
		subsOn:  map[string]*upstream.Session{},
		lastUse: g.clk.Now()}
	g.mu.Lock()
	g.sessions[cs] = struct{}{}
	g.mu.Unlock()
	return cs
}

// close ends the session: requests in flight are cancelled, the upstream
// sessions closed (HTTP DELETE, children stopped).
func (cs *clientSession) close() { closeSessions([]*clientSession{cs}) }

// detach marks the session closed, cancels its requests and returns its
// upstream sessions for the caller to close.
func (cs *clientSession) detach() []*upstream.Session {
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return nil
	}
	cs.closed = true
	ups := make([]*upstream.Session, 0, len(cs.ups))
	for _, us := range cs.ups {
		ups = append(ups, us)
	}
	cs.ups = map[string]*upstream.Session{}
	cs.mu.Unlock()
	cs.cancel()
	cs.g.mu.Lock()
	delete(cs.g.sessions, cs)
	cs.g.mu.Unlock()
	return ups
}

// upstreamCloseTimeout bounds closing a batch of client sessions: their
// members get that long, together, to take the DELETEs.
const upstreamCloseTimeout = 2 * time.Second

// closeParallel bounds the upstream sessions closed at once.
const closeParallel = 64

// closeSessions closes client sessions: their upstream sessions close
// concurrently (at most closeParallel at once) under one shared deadline,
// so a member that never answers costs upstreamCloseTimeout once, however
// many sessions it carried.
func closeSessions(all []*clientSession) {
	var ups []*upstream.Session
	for _, cs := range all {
		ups = append(ups, cs.detach()...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), upstreamCloseTimeout)
	defer cancel()
	var eg errgroup.Group
	eg.SetLimit(closeParallel)
	for _, us := range ups {
		eg.Go(func() error {
			us.CloseContext(ctx)
			return nil
		})
	}
	_ = eg.Wait()
	for _, cs := range all {
		cs.wg.Wait()
	}
}

func (cs *clientSession) markReady() {
	cs.mu.Lock()
	cs.ready = true
	cs.mu.Unlock()
}

func (cs *clientSession) touch() {
	cs.mu.Lock()
	cs.lastUse = cs.g.clk.Now()
	cs.mu.Unlock()
}

// idle reports how long the session has had no request, zero while one runs.
func (cs *clientSession) idle() time.Duration {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.running) > 0 {
		return 0
	}
	return cs.g.clk.Now().Sub(cs.lastUse)
}

func idKey(id jsonrpc.ID) string {
	switch v := id.Raw().(type) {
	case int64:
		return "n" + strconv.FormatInt(v, 10)
	case string:
		return "s" + v
	}
	return ""
}

// handleRequest answers one client request.
func (cs *clientSession) handleRequest(ctx context.Context, req *jsonrpc.Request) *jsonrpc.Response {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cs.ctx, cancel)
	defer stop()
	key := idKey(req.ID)
	cs.mu.Lock()
	cs.running[key] = cancel
	cs.mu.Unlock()
	defer func() {
		cs.mu.Lock()
		delete(cs.running, key)
		cs.lastUse = cs.g.clk.Now()
		cs.mu.Unlock()
	}()
	result, err := cs.dispatch(ctx, req)
	if err != nil {
		return &jsonrpc.Response{ID: req.ID, Error: wireError(err)}
	}
	return &jsonrpc.Response{ID: req.ID, Result: result}
}

// wireError is what the client gets for err: the member's or our JSON-RPC
// error as is, anything else as an internal error naming its type.
func wireError(err error) *jsonrpc.Error {
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) {
		return rpcErr
	}
	if t := router.TypeOf(err); t != "" {
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("%s: %v", t, err)}
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
}

// handleNotification takes a client notification.
func (cs *clientSession) handleNotification(n *jsonrpc.Request) {
	switch n.Method {
	case "notifications/cancelled":
		var p struct {
			RequestID any `json:"requestId"`
		}
		if json.Unmarshal(n.Params, &p) != nil {
			return
		}
		id, err := jsonrpc.MakeID(p.RequestID)
		if err != nil {
			return
		}
		cs.mu.Lock()
		cancel := cs.running[idKey(id)]
		cs.mu.Unlock()
		if cancel != nil {
			cancel() // the member running it gets notifications/cancelled
		}
	case "notifications/roots/list_changed":
		for _, us := range cs.open() {
			cs.wg.Go(func() { _ = us.Notify(cs.ctx, n.Method, n.Params) })
		}
	}
}

// handleResponse passes the client's answer to a member's request back.
func (cs *clientSession) handleResponse(r *jsonrpc.Response) {
	n, ok := r.ID.Raw().(int64)
	if !ok {
		return
	}
	cs.mu.Lock()
	a, ok := cs.asked[n]
	delete(cs.asked, n)
	cs.mu.Unlock()
	if !ok {
		return
	}
	cs.wg.Go(func() {
		ctx, cancel := context.WithTimeout(cs.ctx, 10*time.Second)
		defer cancel()
		_ = a.us.Respond(ctx, a.id, r.Result, r.Error)
	})
}

func (cs *clientSession) open() []*upstream.Session {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*upstream.Session, 0, len(cs.ups))
	for _, us := range cs.ups {
		out = append(out, us)
	}
	return out
}

// FromMember relays a member's notification or request to the client
// (upstream.Handler).
func (cs *clientSession) FromMember(us *upstream.Session, msg *jsonrpc.Request, tag any) {
	related, _ := tag.(jsonrpc.ID)
	if msg.IsCall() {
		if msg.Method == "ping" {
			cs.wg.Go(func() { _ = us.Respond(cs.ctx, msg.ID, json.RawMessage(`{}`), nil) })
			return
		}
		cs.mu.Lock()
		cs.nextAsk++
		n := cs.nextAsk
		cs.asked[n] = asked{us: us, id: msg.ID}
		cs.mu.Unlock()
		id, _ := jsonrpc.MakeID(float64(n))
		cs.out.send(&jsonrpc.Request{ID: id, Method: msg.Method, Params: msg.Params}, related)
		return
	}
	if msg.Method == "notifications/cancelled" {
		msg = cs.remapCancel(us, msg)
		if msg == nil {
			return
		}
	}
	cs.out.send(msg, related)
}

// remapCancel rewrites a member's cancellation of its own request to the
// id the client saw.
func (cs *clientSession) remapCancel(us *upstream.Session, msg *jsonrpc.Request) *jsonrpc.Request {
	var p map[string]any
	if json.Unmarshal(msg.Params, &p) != nil {
		return nil
	}
	orig, err := jsonrpc.MakeID(p["requestId"])
	if err != nil {
		return nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for n, a := range cs.asked {
		if a.us == us && a.id == orig {
			delete(cs.asked, n)
			p["requestId"] = n
			params, _ := json.Marshal(p)
			return &jsonrpc.Request{Method: msg.Method, Params: params}
		}
	}
	return nil
}

// SessionClosed forgets a lost upstream session; subscriptions it carried
// move to a member that serves (upstream.Handler).
func (cs *clientSession) SessionClosed(us *upstream.Session, _ error) {
	cs.mu.Lock()
	if cs.ups[us.Member()] == us {
		delete(cs.ups, us.Member())
	}
	for group, held := range cs.subsOn {
		if held == us {
			delete(cs.subsOn, group)
		}
	}
	var move []target
	for uri, group := range cs.subs {
		if cs.g.inGroup(group, us.Member()) {
			move = append(move, target{group: group, name: uri})
		}
	}
	for n, a := range cs.asked {
		if a.us == us {
			delete(cs.asked, n)
		}
	}
	closed := cs.closed
	cs.mu.Unlock()
	if closed || len(move) == 0 {
		return
	}
	cs.wg.Go(func() {
		for _, t := range move {
			params, _ := json.Marshal(map[string]string{"uri": t.name})
			if _, err := cs.relay(cs.ctx, t.group, "resources/subscribe", params, "resources/subscribe", nil, jsonrpc.ID{}, true); err != nil {
				cs.g.log.Warn("subscription_lost", "group", t.group, "uri", t.name, "error", err.Error())
			}
		}
	})
}

func (g *Gateway) inGroup(group, member string) bool {
	gr, ok := g.r().Fleet().Groups[group]
	return ok && slices.ContainsFunc(gr.Members, func(m fleetfile.Member) bool { return m.ID == member })
}

// upstreamOn returns the client's session on member m, opening it (and
// replaying the client's state there) if needed.
func (cs *clientSession) upstreamOn(ctx context.Context, m *upstream.Client) (*upstream.Session, error) {
	id := m.ID()
	for {
		cs.mu.Lock()
		if cs.closed {
			cs.mu.Unlock()
			return nil, fmt.Errorf("client session closed: %w", context.Canceled)
		}
		if us := cs.ups[id]; us != nil && us.Alive() {
			cs.mu.Unlock()
			return us, nil
		}
		if wait := cs.opening[id]; wait != nil {
			cs.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		cs.opening[id] = done
		init := cs.init
		cs.mu.Unlock()

		us, err := m.OpenSession(ctx, init, cs)
		if err == nil {
			if err = cs.replay(ctx, us); err != nil {
				us.Close()
			}
		}
		cs.mu.Lock()
		delete(cs.opening, id)
		close(done)
		if err == nil && cs.closed {
			err = fmt.Errorf("client session closed: %w", context.Canceled)
			defer us.Close()
		} else if err == nil {
			cs.ups[id] = us
		}
		cs.mu.Unlock()
		return us, err
	}
}

// replay sends the client's session state to a new upstream session: its
// log level, and its subscriptions on the member's groups (which the
// session the client used before in those groups gives up).
func (cs *clientSession) replay(ctx context.Context, us *upstream.Session) error {
	cs.mu.Lock()
	level := cs.level
	groups := map[string]bool{}
	for _, group := range cs.subs {
		if cs.g.inGroup(group, us.Member()) {
			groups[group] = true
		}
	}
	cs.mu.Unlock()
	if level != nil {
		if _, err := us.Call(ctx, "logging/setLevel", level, nil); err != nil && !isRPC(err) {
			return err
		}
	}
	for group := range groups {
		if err := cs.moveSubs(ctx, group, us); err != nil {
			return err
		}
	}
	return nil
}

// moveSubs makes us the holder of the client's subscriptions on group:
// every one is sent to us, then the previous holder, if still open,
// unsubscribes (best effort: its member may be gone). A member may answer
// a subscription with an error; that is the client's business, not a
// reason to fail the session.
func (cs *clientSession) moveSubs(ctx context.Context, group string, us *upstream.Session) error {
	cs.mu.Lock()
	prev := cs.subsOn[group]
	var uris []string
	for uri, g := range cs.subs {
		if g == group {
			uris = append(uris, uri)
		}
	}
	cs.mu.Unlock()
	for _, uri := range uris {
		params, _ := json.Marshal(map[string]string{"uri": uri})
		if _, err := us.Call(ctx, "resources/subscribe", params, nil); err != nil && !isRPC(err) {
			return err
		}
	}
	cs.mu.Lock()
	cs.subsOn[group] = us
	cs.mu.Unlock()
	if prev == nil || prev == us || !prev.Alive() {
		return nil
	}
	for _, uri := range uris {
		params, _ := json.Marshal(map[string]string{"uri": uri})
		if _, err := prev.Call(ctx, "resources/unsubscribe", params, nil); err != nil {
			cs.g.log.Debug("unsubscribe_failed", "mcp_server", prev.Member(), "uri", uri, "error", err.Error())
		}
	}
	return nil
}

// subsHolder returns the open upstream session holding the client's
// subscriptions on group, nil if none.
func (cs *clientSession) subsHolder(group string) *upstream.Session {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if us := cs.subsOn[group]; us != nil && us.Alive() {
		return us
	}
	return nil
}

func isRPC(err error) bool {
	var rpcErr *jsonrpc.Error
	return errors.As(err, &rpcErr)
}

// relay sends a request to a group through the router (failover, breaker):
// each attempt goes on the client's own session on that member. A session
// the member lost is opened again (its state replayed) and the request sent
// once more. name and args are the tool and its arguments for tools/call,
// the method otherwise.
func (cs *clientSession) relay(ctx context.Context, group, method string, params json.RawMessage, name string, args json.RawMessage, related jsonrpc.ID, safe bool) (*upstream.Reply, error) {
	send := func(ctx context.Context, m *upstream.Client, repeatable bool) (*upstream.Reply, outcome.Class, error) {
		for attempt := 0; ; attempt++ {
			us, err := cs.upstreamOn(ctx, m)
			if err != nil {
				return nil, classify(err), err
			}
			raw, err := us.CallOnce(ctx, method, params, related, repeatable || upstream.Repeatable(method))
			if errors.Is(err, upstream.ErrSessionLost) && attempt == 0 {
				cs.g.log.Info("upstream_session_reopened", "mcp_server", m.ID(), "method", method)
				continue // the member did not run it: once more on a new session
			}
			if err != nil {
				return nil, classify(err), err
			}
			if method == "resources/subscribe" && cs.subsHolder(group) != us {
				if err := cs.moveSubs(ctx, group, us); err != nil {
					return nil, classify(err), err
				}
			}
			reply := &upstream.Reply{Result: raw}
			if method == "tools/call" {
				reply.IsError = toolFailed(raw)
			}
			if reply.IsError {
				return reply, outcome.ToolError, nil
			}
			return reply, outcome.OK, nil
		}
	}
	res, err := cs.g.r().Relay(ctx, group, name, args, send, router.CallOptions{SafeToRepeat: safe, Session: cs.id})
	if err != nil {
		return nil, err
	}
	return res.Reply, nil
}

// classify is outcome.Classify, except that a member's "resource not found"
// (-32002) is the caller's mistake, not a failing member.
func classify(err error) outcome.Class {
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) && rpcErr.Code == -32002 {
		return outcome.CallerError
	}
	return outcome.Classify(nil, err)
}

type sessionKey struct{}

// withSession marks ctx as a request of client session id.
func withSession(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}

// sessionOf returns the client session of ctx's request, "" if none.
func sessionOf(ctx context.Context) string {
	id, _ := ctx.Value(sessionKey{}).(string)
	return id
}
