package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/dataplane/router"
	"github.com/hangarmesh/hangar/dataplane/upstream"
)

// Limits of hangar_call (docs/design.md §6: bounded everything).
const (
	MaxBatch              = 100
	DefaultMaxConcurrency = 10
	MaxConcurrency        = 50
	DefaultBatchTimeout   = 60 * time.Second
	MaxTimeoutSeconds     = 300
	MaxAttempts           = 10
	MaxResultBytes        = 10 << 20
)

// callArgs is hangar_call's input.
type callArgs struct {
	Calls          []callSpec `json:"calls"`
	MaxConcurrency *int       `json:"max_concurrency"`
	Timeout        *float64   `json:"timeout"`
	FailFast       bool       `json:"fail_fast"`
	MaxAttempts    *int       `json:"max_attempts"`
}

type callSpec struct {
	MCPServer string          `json:"mcp_server"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Timeout   *float64        `json:"timeout"`
}

// ValidationError is one problem with a hangar_call request.
type ValidationError struct {
	Index   *int   `json:"index,omitempty"` // the call, or absent for a batch-level field
	Field   string `json:"field"`
	Message string `json:"message"`
}

// CallResult is one call's result in a hangar_call answer.
type CallResult struct {
	Index     int             `json:"index"`
	CallID    string          `json:"call_id"`
	Success   bool            `json:"success"`
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	ErrorType *string         `json:"error_type"`
	ElapsedMS float64         `json:"elapsed_ms"`
	Member    string          `json:"mcp_server_used,omitempty"`
	Attempts  int             `json:"attempts,omitempty"`
}

// BatchResult is hangar_call's answer.
type BatchResult struct {
	BatchID          string            `json:"batch_id"`
	Success          bool              `json:"success"`
	Total            int               `json:"total"`
	Succeeded        int               `json:"succeeded"`
	Failed           int               `json:"failed"`
	ElapsedMS        float64           `json:"elapsed_ms"`
	Results          []CallResult      `json:"results,omitempty"`
	ValidationErrors []ValidationError `json:"validation_errors,omitempty"`
}

// parseCall decodes and validates a hangar_call request. Any problem rejects
// the whole batch, with every problem listed.
func (g *Gateway) parseCall(raw json.RawMessage) (*callArgs, []ValidationError) {
	var args callArgs
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
		dec = json.NewDecoder(bytes.NewReader(raw))
	}
	if err := dec.Decode(&args); err != nil {
		return nil, []ValidationError{{Field: "arguments", Message: "invalid hangar_call arguments: " + err.Error()}}
	}
	var errs []ValidationError
	batch := func(field, msg string) { errs = append(errs, ValidationError{Field: field, Message: msg}) }
	switch n := len(args.Calls); {
	case n == 0:
		batch("calls", "at least one call is required")
	case n > MaxBatch:
		batch("calls", fmt.Sprintf("%d calls is more than the limit of %d: split the batch", n, MaxBatch))
	}
	if c := args.MaxConcurrency; c != nil && (*c < 1 || *c > MaxConcurrency) {
		batch("max_concurrency", fmt.Sprintf("must be between 1 and %d, got %d", MaxConcurrency, *c))
	}
	if t := args.Timeout; t != nil && (*t < 1 || *t > MaxTimeoutSeconds) {
		batch("timeout", fmt.Sprintf("must be between 1 and %d seconds, got %g", MaxTimeoutSeconds, *t))
	}
	if a := args.MaxAttempts; a != nil && (*a < 1 || *a > MaxAttempts) {
		batch("max_attempts", fmt.Sprintf("must be between 1 and %d, got %d", MaxAttempts, *a))
	}
	if len(args.Calls) > MaxBatch {
		return nil, errs
	}
	for i, c := range args.Calls {
		call := func(field, msg string) {
			errs = append(errs, ValidationError{Index: &i, Field: field, Message: msg})
		}
		switch {
		case c.MCPServer == "":
			call("mcp_server", "required: name a server or group (hangar_list shows them)")
		case !g.known(c.MCPServer):
			call("mcp_server", fmt.Sprintf("unknown server or group %q (hangar_list shows them)", c.MCPServer))
		}
		if c.Tool == "" {
			call("tool", "required")
		}
		if a := bytes.TrimSpace(c.Arguments); len(a) > 0 && a[0] != '{' && !bytes.Equal(a, []byte("null")) {
			call("arguments", "must be an object")
		}
		if t := c.Timeout; t != nil && (*t <= 0 || *t > MaxTimeoutSeconds) {
			call("timeout", fmt.Sprintf("must be more than 0 and at most %d seconds, got %g", MaxTimeoutSeconds, *t))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &args, nil
}

func (g *Gateway) known(id string) bool {
	f := g.r().Fleet()
	_, s := f.Servers[id]
	_, gr := f.Groups[id]
	return s || gr
}

// hangarCall runs a validated batch: calls in parallel up to max_concurrency,
// within the batch timeout, results in call order.
func (g *Gateway) hangarCall(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	args, verrs := g.parseCall(req.Params.Arguments)
	if verrs != nil {
		return jsonResult(BatchResult{BatchID: newID("batch"), ValidationErrors: verrs}, true)
	}
	timeout := DefaultBatchTimeout
	if args.Timeout != nil {
		timeout = time.Duration(*args.Timeout * float64(time.Second))
	}
	conc := DefaultMaxConcurrency
	if args.MaxConcurrency != nil {
		conc = *args.MaxConcurrency
	}
	opts := router.CallOptions{Session: sessionOf(ctx)}
	if args.MaxAttempts != nil {
		opts.MaxAttempts = *args.MaxAttempts
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	batchID := newID("batch")
	results := make([]CallResult, len(args.Calls))
	if len(args.Calls) == 1 { // the usual batch: run it here, not on a goroutine of its own
		results[0] = CallResult{Index: 0, CallID: batchID + "-0"}
		g.runOne(ctx, args.Calls[0], opts, &results[0])
		return jsonResult(batchResult(batchID, results, start), false)
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, c := range args.Calls {
		results[i] = CallResult{Index: i, CallID: fmt.Sprintf("%s-%d", batchID, i)}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			setError(&results[i], skippedType(ctx, args.FailFast), "not started: "+skippedWhy(ctx))
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			g.runOne(ctx, c, opts, &results[i])
			if args.FailFast && !results[i].Success {
				cancel()
			}
		})
	}
	wg.Wait()
	return jsonResult(batchResult(batchID, results, start), false)
}

// batchResult counts a batch's results.
func batchResult(batchID string, results []CallResult, start time.Time) BatchResult {
	out := BatchResult{BatchID: batchID, Total: len(results), Results: results,
		ElapsedMS: ms(time.Since(start))}
	for _, r := range results {
		if r.Success {
			out.Succeeded++
		} else {
			out.Failed++
		}
	}
	out.Success = out.Failed == 0
	return out
}

// runOne runs one call of a batch.
func (g *Gateway) runOne(ctx context.Context, c callSpec, opts router.CallOptions, out *CallResult) {
	start := time.Now()
	if c.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*c.Timeout*float64(time.Second)))
		defer cancel()
	}
	params := forwardParams(c.Arguments)
	send := func(ctx context.Context, m *upstream.Client, _ bool) (*upstream.Reply, outcome.Class, error) {
		reply, err := m.Forward(ctx, c.Tool, params)
		if err != nil {
			return nil, outcome.Classify(nil, err), err
		}
		return reply, outcome.Classify(&mcp.CallToolResult{IsError: reply.IsError}, nil), nil
	}
	res, err := g.r().Relay(ctx, c.MCPServer, c.Tool, c.Arguments, send, opts)
	out.ElapsedMS = ms(time.Since(start))
	if err != nil {
		setError(out, string(router.TypeOf(err)), err.Error())
		return
	}
	out.Member, out.Attempts = res.Member, res.Attempts
	data := res.Reply.Result // the member's result as it sent it: not decoded, not re-encoded
	if len(data) > MaxResultBytes {
		setError(out, "ResultTooLarge", fmt.Sprintf("result of %d bytes exceeds the %d byte limit", len(data), MaxResultBytes))
		return
	}
	out.Result = data
	if res.Reply.IsError {
		setError(out, string(router.ErrToolError), toolErrorText(data))
		return
	}
	out.Success = true
}

// forwardParams are the tools/call params of a call of a batch (the name
// is set by the member's client).
func forwardParams(args json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(args)) == 0 {
		return nil
	}
	p := make([]byte, 0, len(args)+16)
	p = append(p, `{"arguments":`...)
	p = append(p, args...)
	return append(p, '}')
}

func setError(r *CallResult, typ, msg string) {
	r.Success = false
	r.Error, r.ErrorType = &msg, &typ
}

func skippedType(ctx context.Context, failFast bool) string {
	if ctx.Err() == context.DeadlineExceeded {
		return string(router.ErrTimeout)
	}
	if failFast {
		return "FailFastAborted"
	}
	return string(router.ErrCanceled)
}

func skippedWhy(ctx context.Context) string {
	if ctx.Err() == context.DeadlineExceeded {
		return "the batch timeout passed"
	}
	return "the batch was aborted"
}

// toolErrorText is the first text of a raw tool result.
func toolErrorText(raw json.RawMessage) string {
	var r struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	_ = json.Unmarshal(raw, &r)
	for _, c := range r.Content {
		if c.Type == "text" {
			return c.Text
		}
	}
	return "the tool reported an error"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
