package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// statelessFrom is the first protocol version without a standalone stream
// (SEP-2575).
const statelessFrom = "2026-07-28"

func (c *Client) newWire(ctx context.Context, s *Session) (wire, error) {
	switch c.srv.Mode {
	case fleetfile.ModeRemote:
		wctx, cancel := context.WithCancel(context.Background())
		return &httpWire{c: c, s: s, ctx: wctx, cancel: cancel}, nil
	case fleetfile.ModeSubprocess:
		t, err := c.transport()
		if err != nil {
			return nil, err
		}
		conn, err := t.Connect(ctx)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w: %w", c.srv.ID, outcome.ErrNotDelivered, err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		w := &pipeWire{s: s, conn: conn, ctx: wctx, cancel: cancel}
		s.wg.Go(w.read)
		return w, nil
	}
	return nil, fmt.Errorf("member %s: mode %q cannot be called: %w", c.srv.ID, c.srv.Mode, outcome.ErrNotDelivered)
}

// pipeWire carries a session over a subprocess child's stdin and stdout.
type pipeWire struct {
	s      *Session
	conn   mcp.Connection
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *pipeWire) send(ctx context.Context, msg jsonrpc.Message, _ int64, _ bool) error {
	return w.conn.Write(ctx, msg)
}

func (w *pipeWire) initialized(string) {}

func (w *pipeWire) read() {
	for {
		msg, err := w.conn.Read(w.ctx)
		if err != nil {
			if w.ctx.Err() == nil {
				w.s.fail(fmt.Errorf("%s: %w: %w", w.s.c.srv.ID, mcp.ErrConnectionClosed, err), false)
			}
			return
		}
		w.s.deliver(msg, 0)
	}
}

func (w *pipeWire) close(context.Context) {
	w.cancel()
	_ = w.conn.Close()
}

// httpWire carries a session over Streamable HTTP: a POST per message, the
// answer as JSON or an SSE stream, and the standalone GET stream for what
// the member sends outside a request.
type httpWire struct {
	c      *Client
	s      *Session
	ctx    context.Context // the session's lifetime
	cancel context.CancelFunc

	mu      sync.Mutex
	sid     string
	version string
}

func (w *httpWire) headers(h http.Header) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.version != "" {
		h.Set("Mcp-Protocol-Version", w.version)
	}
	if w.sid != "" {
		h.Set("Mcp-Session-Id", w.sid)
	}
}

func (w *httpWire) sessionID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sid
}

func (w *httpWire) send(ctx context.Context, msg jsonrpc.Message, call int64, repeatable bool) error {
	data, err := EncodeMessage(msg)
	if err != nil {
		return err
	}
	// The request lives until its answer's stream is read to its end, which
	// may be after the caller has its answer and has cancelled ctx: a
	// request cancelled with its body unread loses its connection. ctx
	// ending before the answer still cancels it (stop undoes that link).
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, rcancel)
	handedOff := false
	defer func() {
		if !handedOff {
			stop()
			rcancel()
		}
	}()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, w.c.srv.Endpoint, bytes.NewReader(data))
	if err != nil {
		return err
	}
	h := req.Header
	h["Content-Type"] = contentJSON
	h["Accept"] = acceptBoth
	if repeatable {
		// A POST on a kept-alive connection that broke may have been read
		// and run by the member: only a request safe to run twice may be
		// sent again by the transport. The nil header marks it replayable
		// and is not sent. Any other request fails instead, and is then
		// classified as possibly delivered (never failed over blindly).
		req.Header["X-Idempotency-Key"] = nil
	}
	w.headers(req.Header)
	resp, err := w.c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", w.c.srv.ID, err)
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		w.mu.Lock()
		if w.sid == "" {
			w.sid = sid
		}
		w.mu.Unlock()
	}
	if err := w.check(resp); err != nil {
		return err
	}
	if call == 0 {
		drain(resp.Body)
		return nil
	}
	ct := MediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
		if err != nil {
			return fmt.Errorf("read answer of %s: %w", w.c.srv.ID, err)
		}
		m, err := DecodeMessage(body)
		if err != nil {
			return fmt.Errorf("malformed JSON-RPC from %s: %w", w.c.srv.ID, err)
		}
		w.s.deliver(m, call)
		return nil
	case "text/event-stream":
		handedOff = true
		w.s.wg.Go(func() {
			defer rcancel()
			var answer jsonrpc.Message
			err := readEvents(resp.Body, func(m jsonrpc.Message) bool {
				if r, ok := m.(*jsonrpc.Response); ok && r.ID.Raw() == call {
					answer = m
					return true
				}
				w.s.deliver(m, call)
				return false
			})
			if err != nil {
				stop()
				resp.Body.Close()
				w.s.callFailed(call, fmt.Errorf("stream of %s ended before the answer: %w", w.c.srv.ID, noEOF(err)))
				return
			}
			// The member ends the stream after the answer: once the answer
			// is handed over, read the stream to its end so the connection
			// goes back to the pool, whatever the caller does next.
			stop()
			w.s.deliver(answer, call)
			drain(resp.Body)
		})
		return nil
	}
	resp.Body.Close()
	return fmt.Errorf("%s answered with content type %q", w.c.srv.ID, ct)
}

// Header values of every POST, shared (never modified).
var (
	contentJSON = []string{"application/json"}
	acceptBoth  = []string{"application/json, text/event-stream"}
)

// check turns an HTTP error status into an error: ErrSessionLost for an
// unknown session, the member's JSON-RPC error when the body is one.
func (w *httpWire) check(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if lostSession(resp.StatusCode, body, w.sessionID() != "") {
		return fmt.Errorf("%s: HTTP %d: %w", w.c.srv.ID, resp.StatusCode, ErrSessionLost)
	}
	if msg, err := parseMessage(body); err == nil && msg.Error != nil && resp.StatusCode < 500 {
		return msg.Error
	}
	return fmt.Errorf("%s answered HTTP %d: %s", w.c.srv.ID, resp.StatusCode, strings.TrimSpace(string(body)))
}

// lostSession recognizes an answer saying the session id is unknown: 404
// (the spec) or 400 whose body talks of the session (server-everything:
// "Bad Request: No valid session ID provided").
func lostSession(status int, body []byte, haveSession bool) bool {
	if !haveSession {
		return false
	}
	return status == http.StatusNotFound ||
		status == http.StatusBadRequest && bytes.Contains(bytes.ToLower(body), []byte("session"))
}

func (w *httpWire) initialized(version string) {
	w.mu.Lock()
	w.version = version
	w.mu.Unlock()
	if version < statelessFrom {
		w.s.wg.Go(w.standalone)
	}
}

// standalone keeps the GET stream open, reconnecting a few times; a member
// that cannot be reached again, or forgot the session, ends the session.
func (w *httpWire) standalone() {
	failures := 0
	for w.ctx.Err() == nil {
		connected, retry, err := w.listen()
		if w.ctx.Err() != nil {
			return
		}
		if !retry {
			if err != nil {
				w.s.fail(err, false)
			}
			return
		}
		if connected {
			failures = 0
		}
		if failures++; failures > 3 {
			w.s.fail(fmt.Errorf("%s: standalone stream: %w: %w", w.c.srv.ID, mcp.ErrConnectionClosed, err), false)
			return
		}
		t := time.NewTimer(time.Duration(failures) * 100 * time.Millisecond)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen runs one standalone GET stream until it ends.
func (w *httpWire) listen() (connected, retry bool, err error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, w.c.srv.Endpoint, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	w.headers(req.Header)
	resp, err := w.c.http.Do(req)
	if err != nil {
		return false, true, err
	}
	ct := MediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		err := w.check(resp)
		resp.Body.Close()
		if errors.Is(err, ErrSessionLost) {
			return false, false, err
		}
		if resp.StatusCode >= 500 {
			return false, true, err
		}
		return false, false, nil // the member offers no standalone stream
	}
	defer resp.Body.Close()
	err = readEvents(resp.Body, func(m jsonrpc.Message) bool {
		w.s.deliver(m, 0)
		return false
	})
	return true, true, noEOF(err)
}

func (w *httpWire) close(ctx context.Context) {
	w.cancel()
	sid := w.sessionID()
	if sid == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.c.srv.Endpoint, nil)
	if err != nil {
		return
	}
	w.headers(req.Header)
	if resp, err := w.c.http.Do(req); err == nil {
		drain(resp.Body)
	}
}

// readEvents reads an SSE stream, decoding each event's data as a JSON-RPC
// message, until fn returns true (nil) or the stream ends (its error).
func readEvents(r io.Reader, fn func(jsonrpc.Message) bool) error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	data := buffers.Get().(*bytes.Buffer)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
		putBuffer(data)
	}()
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // a line longer than the reader's buffer
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= MaxResponseBytes+64 {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0 && len(line) > 0: // end of an event
			if data.Len() > 0 {
				if m, derr := DecodeMessage(data.Bytes()); derr == nil && fn(m) {
					return nil
				}
				data.Reset()
			}
		case bytes.HasPrefix(trimmed, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(trimmed, []byte("data:")), []byte(" ")))
			if data.Len() > MaxResponseBytes {
				return fmt.Errorf("event exceeds %d bytes", MaxResponseBytes)
			}
		}
		if err != nil {
			if data.Len() > 0 {
				if m, derr := DecodeMessage(data.Bytes()); derr == nil && fn(m) {
					return nil
				}
			}
			return err
		}
	}
}

// readers and buffers are reused across answers: a stream reader and the
// data of an event.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
	buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// putBuffer returns b to buffers unless it grew large (one huge answer must
// not stay pinned).
func putBuffer(b *bytes.Buffer) {
	if b.Cap() > 64<<10 {
		return
	}
	b.Reset()
	buffers.Put(b)
}
