package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// MaxResponseBytes bounds one upstream answer read by Forward (docs/design.md §6).
const MaxResponseBytes = 10 << 20

// Reply is an upstream's answer to a tools/call, kept as raw JSON so the
// front door can pass it on without decoding and re-encoding its content.
type Reply struct {
	// Result is the raw CallToolResult object, nil when Err is set.
	Result json.RawMessage
	// IsError reports the result's isError flag.
	IsError bool
}

// errSessionGone marks a 404 for our session: the server forgot it.
var errSessionGone = errors.New("upstream: session not found")

// passthroughBefore is the first protocol version whose requests carry
// more than the client's own params (SEP-2575 _meta): such sessions go
// through the SDK client instead of raw forwarding.
const passthroughBefore = "2026-07-28"

var forwardID atomic.Uint64

// Forward calls a tool with params, the raw params object of a tools/call
// (its name is replaced by name), and returns the raw result. On a remote
// member with a session of protocol < 2026-07-28 the request is forwarded
// as bytes on the member's session; otherwise it goes through the SDK
// client. Errors are classified like CallTool's: a JSON-RPC error answer is
// a *jsonrpc.Error, a refused connection a dial error.
func (c *Client) Forward(ctx context.Context, name string, params json.RawMessage) (*Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.srv.HTTP.ReadTimeout)
	defer cancel()
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	c.touch()
	body, err := callBody(name, params)
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
	}
	var reply *Reply
	err = c.onSession(ctx, func(cs *mcp.ClientSession) (err error) {
		version := cs.InitializeResult().ProtocolVersion
		if c.srv.Mode != fleetfile.ModeRemote || version >= passthroughBefore {
			reply, err = c.forwardSDK(ctx, cs, name, params)
		} else {
			reply, err = c.post(ctx, cs.ID(), version, body)
		}
		return err
	})
	return reply, err
}

// forwardSDK calls through the SDK client and encodes its result.
func (c *Client) forwardSDK(ctx context.Context, cs *mcp.ClientSession, name string, params json.RawMessage) (*Reply, error) {
	var p struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid params: " + err.Error()}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: p.Arguments})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode result of %s: %w", c.srv.ID, err)
	}
	return &Reply{Result: raw, IsError: res.IsError}, nil
}

// callBody builds a tools/call request with a fresh id and the tool name
// replaced, keeping every other param (arguments, _meta) as raw bytes.
func callBody(name string, params json.RawMessage) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(params)) > 0 {
		if err := json.Unmarshal(params, &fields); err != nil {
			return nil, fmt.Errorf("tools/call params must be an object: %w", err)
		}
	}
	n, _ := json.Marshal(name)
	fields["name"] = n
	if _, ok := fields["arguments"]; !ok {
		fields["arguments"] = json.RawMessage("{}")
	}
	p, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(p) + 64)
	b.WriteString(`{"jsonrpc":"2.0","id":"hangar-`)
	b.WriteString(strconv.FormatUint(forwardID.Add(1), 10))
	b.WriteString(`","method":"tools/call","params":`)
	b.Write(p)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// post sends one request body on the member's session and reads the
// answer, as JSON or as an SSE stream.
func (c *Client) post(ctx context.Context, sessionID, version string, body []byte) (_ *Reply, err error) {
	defer func() {
		if err != nil && ctx.Err() != nil {
			c.cancelRemote(sessionID, version, body, context.Cause(ctx))
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.srv.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Protocol-Version", version)
	if sessionID != "" {
		h.Set("Mcp-Session-Id", sessionID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post tools/call to %s: %w", c.srv.ID, err)
	}
	defer drain(resp.Body)
	r := io.LimitReader(resp.Body, MaxResponseBytes+1)
	if resp.StatusCode == http.StatusNotFound && sessionID != "" {
		_, _ = io.Copy(io.Discard, r)
		return nil, fmt.Errorf("%s: %w", c.srv.ID, errSessionGone)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(r, 64<<10))
		if msg, err := parseMessage(data); err == nil && msg.Error != nil {
			return nil, msg.Error
		}
		return nil, fmt.Errorf("%s answered HTTP %d: %s", c.srv.ID, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	switch ct {
	case "application/json":
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("read answer of %s: %w", c.srv.ID, err)
		}
		return replyOf(c.srv.ID, data)
	case "text/event-stream":
		return readSSE(c.srv.ID, r)
	}
	return nil, fmt.Errorf("%s answered with content type %q", c.srv.ID, ct)
}

// readSSE reads events until the one carrying the response.
func readSSE(id string, r io.Reader) (*Reply, error) {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	var data bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0 && len(line) > 0: // end of an event
			if data.Len() > 0 {
				msg := data.Bytes()
				if reply, ok, perr := responseIn(id, msg); ok || perr != nil {
					return reply, perr
				}
				data.Reset()
			}
		case bytes.HasPrefix(trimmed, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(trimmed, []byte("data:")), []byte(" ")))
			if data.Len() > MaxResponseBytes {
				return nil, fmt.Errorf("answer of %s exceeds %d bytes", id, MaxResponseBytes)
			}
		}
		if err != nil {
			if data.Len() > 0 {
				if reply, ok, perr := responseIn(id, data.Bytes()); ok || perr != nil {
					return reply, perr
				}
			}
			return nil, fmt.Errorf("stream of %s ended before the answer: %w", id, noEOF(err))
		}
	}
}

// responseIn decodes one SSE event; ok is false for notifications and
// server requests, which the front door does not relay.
func responseIn(id string, data []byte) (*Reply, bool, error) {
	msg, err := parseMessage(data)
	if err != nil {
		return nil, false, fmt.Errorf("malformed JSON-RPC from %s: %w", id, err)
	}
	if msg.Method != "" || (msg.Result == nil && msg.Error == nil) {
		return nil, false, nil
	}
	if msg.Error != nil {
		return nil, true, msg.Error
	}
	reply, err := resultReply(id, msg.Result)
	return reply, true, err
}

type message struct {
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *jsonrpc.Error  `json:"error"`
}

func parseMessage(data []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func replyOf(id string, data []byte) (*Reply, error) {
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("answer of %s exceeds %d bytes", id, MaxResponseBytes)
	}
	msg, err := parseMessage(data)
	if err != nil {
		return nil, fmt.Errorf("malformed JSON-RPC from %s: %w", id, err)
	}
	if msg.Error != nil {
		return nil, msg.Error
	}
	return resultReply(id, msg.Result)
}

func resultReply(id string, result json.RawMessage) (*Reply, error) {
	var flag struct {
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(result, &flag); err != nil {
		return nil, fmt.Errorf("malformed result from %s: %w", id, err)
	}
	return &Reply{Result: result, IsError: flag.IsError}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// drain reads what remains of a body without waiting long for more (at
// most 64 KiB), then closes it.
func drain(body io.ReadCloser) {
	// Read what is left (a JSON answer was read whole; a server closes an
	// SSE stream right after the answer) so the connection goes back to
	// the pool. A stream kept open is cut after drainWait, not waited on.
	t := time.AfterFunc(drainWait, func() { body.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	t.Stop()
	body.Close()
}

// drainWait bounds the wait for the rest of an answer's stream.
const drainWait = 5 * time.Millisecond
