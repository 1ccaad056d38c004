// The relay tests carry MCP's logging, sampling and roots through the
// agent on purpose: the protocol deprecates them (2026-07-28) but clients
// and servers of the older versions still use them.
//
//lint:file-ignore SA1019 the relay of deprecated MCP features is what these tests check

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// relayUpstream is an upstream MCP server built on the official Go SDK with
// every feature the front door relays: progress, logging, sampling,
// elicitation, roots, subscribable resources, prompts, completion and a
// tool that waits to be cancelled. It serves Streamable HTTP on a fixed
// loopback port so that it can be stopped and started again there.
type relayUpstream struct {
	t     *testing.T
	name  string
	addr  string
	lost  int // the status for an unknown session: 404 (the spec) or 400 (server-everything)
	srv   *mcp.Server
	http  *http.Server
	cance atomic.Int64 // tool calls that saw their context cancelled

	mu     sync.Mutex
	levels map[string]string // session id → level set by logging/setLevel
}

func startRelayUpstream(t *testing.T, name string, lost int) *relayUpstream {
	t.Helper()
	u := &relayUpstream{t: t, name: name, lost: lost, levels: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(u.Stop)
	return u
}

func (u *relayUpstream) URL() string { return "http://" + u.addr + "/mcp" }

// serve starts a fresh server (no sessions) on ln.
func (u *relayUpstream) serve(ln net.Listener) {
	u.srv = mcp.NewServer(&mcp.Implementation{Name: u.name, Version: "1"}, &mcp.ServerOptions{
		Instructions:       "instructions of " + u.name,
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "-done"}}}, nil
		},
	})
	u.srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.SetLoggingLevelParams); ok && method == "logging/setLevel" {
				u.mu.Lock()
				u.levels[req.GetSession().ID()] = string(p.Level)
				u.mu.Unlock()
			}
			return next(ctx, method, req)
		}
	})
	u.addTools()
	u.srv.AddResource(&mcp.Resource{URI: "test://doc", Name: "doc", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "doc of " + u.name}}}, nil
		})
	u.srv.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user",
				Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"] + " from " + u.name}}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return u.srv }, nil)
	u.http = &http.Server{Handler: u.lostAs(h), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.http.Serve(ln) }()
}

// lostAs answers an unknown session with u.lost, as the server styles do.
func (u *relayUpstream) lostAs(h http.Handler) http.Handler {
	if u.lost == http.StatusNotFound {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && !u.knows(sid) {
			http.Error(w, "Bad Request: No valid session ID provided", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (u *relayUpstream) knows(sid string) bool {
	for ss := range u.srv.Sessions() {
		if ss.ID() == sid {
			return true
		}
	}
	return false
}

// Sessions counts the sessions open on the server.
func (u *relayUpstream) Sessions() int {
	n := 0
	for range u.srv.Sessions() {
		n++
	}
	return n
}

// Level returns the log level a session set.
func (u *relayUpstream) Level(sid string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.levels[sid]
}

// Stop stops the server and ends its sessions.
func (u *relayUpstream) Stop() {
	if u.http == nil {
		return
	}
	for ss := range u.srv.Sessions() {
		_ = ss.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.http.Shutdown(ctx)
	u.http = nil
}

// Restart stops the server and starts a new one on the same address: every
// session is forgotten.
func (u *relayUpstream) Restart() {
	u.Stop()
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		u.t.Fatalf("listen again on %s: %v", u.addr, err)
	}
	u.serve(ln)
}

// Touch tells the subscribers of uri that it changed.
func (u *relayUpstream) Touch(uri string) {
	_ = u.srv.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: uri})
}

type relayArgs struct {
	N       int    `json:"n,omitempty"`
	Message string `json:"message,omitempty"`
}

func (u *relayUpstream) addTools() {
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(u.srv, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ relayArgs) (*mcp.CallToolResult, any, error) {
		return text(u.name + " " + req.Session.ID()), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		for i := 1; i <= a.N; i++ {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: float64(a.N)})
			}
		}
		return text("done"), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "slow"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		t := time.NewTicker(200 * time.Millisecond) // a long job reporting progress
		defer t.Stop()
		for i := 1; i <= a.N; i++ {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-t.C:
			}
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(),
				Progress: float64(i), Total: float64(a.N)})
		}
		return text("slow done"), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "log"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: u.name, Data: a.Message})
		return text("logged"), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "sample"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
			Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: a.Message}}}})
		if err != nil {
			return nil, nil, err
		}
		return text("sampled: " + res.Content.(*mcp.TextContent).Text), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "sample_within"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(a.N)*time.Millisecond) // the member's own bound on the client's answer
		defer cancel()
		_, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
			Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: a.Message}}}})
		if err != nil {
			return text(u.name + " gave up sampling: " + err.Error()), nil, nil
		}
		return text(u.name + " sampled"), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "elicit"}, func(ctx context.Context, req *mcp.CallToolRequest, a relayArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: a.Message,
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
		if err != nil {
			return nil, nil, err
		}
		return text(fmt.Sprintf("%s %v", res.Action, res.Content["name"])), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "roots"}, func(ctx context.Context, req *mcp.CallToolRequest, _ relayArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return text(strings.Join(uris, ",")), nil, nil
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "wait"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ relayArgs) (*mcp.CallToolResult, any, error) {
		<-ctx.Done()
		u.cance.Add(1)
		return nil, nil, ctx.Err()
	})
	mcp.AddTool(u.srv, &mcp.Tool{Name: "touch"}, func(_ context.Context, _ *mcp.CallToolRequest, _ relayArgs) (*mcp.CallToolResult, any, error) {
		u.Touch("test://doc")
		return text("touched by " + u.name), nil, nil
	})
}
