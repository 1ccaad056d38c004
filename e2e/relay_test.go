// The relay tests carry MCP's logging, sampling and roots through the
// agent on purpose: the protocol deprecates them (2026-07-28) but clients
// and servers of the older versions still use them.
//
//lint:file-ignore SA1019 the relay of deprecated MCP features is what these tests check

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// relayClient is an official Go SDK client that records what the agent
// relays to it and answers the members' requests.
type relayClient struct {
	cs *mcp.ClientSession

	mu       sync.Mutex
	progress []float64
	logs     []string
	updated  []string
}

func connectRelay(t *testing.T, url, name string) *relayClient {
	t.Helper()
	rc := &relayClient{}
	c := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			rc.mu.Lock()
			rc.progress = append(rc.progress, r.Params.Progress)
			rc.mu.Unlock()
		},
		LoggingMessageHandler: func(_ context.Context, r *mcp.LoggingMessageRequest) {
			rc.mu.Lock()
			rc.logs = append(rc.logs, fmt.Sprint(r.Params.Data))
			rc.mu.Unlock()
		},
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			rc.mu.Lock()
			rc.updated = append(rc.updated, r.Params.URI)
			rc.mu.Unlock()
		},
		CreateMessageHandler: func(_ context.Context, r *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			in := r.Params.Messages[0].Content.(*mcp.TextContent).Text
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: name + " says " + in}}, nil
		},
		ElicitationHandler: func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": name}}, nil
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///" + name, Name: name})
	cs, err := c.Connect(fdCtx(t, 20*time.Second), &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	rc.cs = cs
	return rc
}

func (rc *relayClient) text(t *testing.T, tool string, args map[string]any) string {
	t.Helper()
	res, err := rc.cs.CallTool(fdCtx(t, 20*time.Second), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %s", tool, fdText(res))
	}
	return fdText(res)
}

func (rc *relayClient) seen(what *[]string, want string) func() bool {
	return func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, s := range *what {
			if s == want {
				return true
			}
		}
		return false
	}
}

func relayFleet(t *testing.T, members ...*relayUpstream) string {
	var servers, refs []string
	for i, m := range members {
		servers = append(servers, fmt.Sprintf("  %s: {mode: remote, endpoint: %s, health_check_interval_s: 1, http: {read_timeout: 10}}", m.name, m.URL()))
		refs = append(refs, fmt.Sprintf("{id: %s, priority: %d}", m.name, i+1))
	}
	return writeConfig(t, fmt.Sprintf("mcp_servers:\n%s\n  grp: {mode: group, strategy: priority, tool_access: {mode: front_door}, members: [%s]}\n",
		strings.Join(servers, "\n"), strings.Join(refs, ", ")))
}

// Everything a member does with a client reaches that client through the
// agent: progress, logs, sampling, elicitation, roots, resources and their
// updates, prompts, completion, cancellation. Two clients stay apart.
func TestFrontDoorRelays(t *testing.T) {
	skipShort(t)
	up := startRelayUpstream(t, "up", http.StatusNotFound)
	a := startAgent(t, relayFleet(t, up))
	alice := connectRelay(t, a.URL(), "alice")
	bob := connectRelay(t, a.URL(), "bob")

	if got := alice.cs.InitializeResult().Instructions; !strings.Contains(got, "instructions of up") {
		t.Errorf("instructions = %q, want the member's", got)
	}
	t.Run("progress", func(t *testing.T) {
		params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"n": 3}}
		params.SetProgressToken("tok-1")
		if _, err := alice.cs.CallTool(fdCtx(t, 20*time.Second), params); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "3 progress notifications", func() bool {
			alice.mu.Lock()
			defer alice.mu.Unlock()
			return len(alice.progress) == 3
		})
		bob.mu.Lock()
		defer bob.mu.Unlock()
		if len(bob.progress) != 0 {
			t.Errorf("bob got alice's progress: %v", bob.progress)
		}
	})
	t.Run("logging per client", func(t *testing.T) {
		if err := alice.cs.SetLoggingLevel(fdCtx(t, 10*time.Second), &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
			t.Fatal(err)
		}
		if err := bob.cs.SetLoggingLevel(fdCtx(t, 10*time.Second), &mcp.SetLoggingLevelParams{Level: "error"}); err != nil {
			t.Fatal(err)
		}
		alice.text(t, "log", map[string]any{"message": "for alice"})
		bob.text(t, "log", map[string]any{"message": "for bob"})
		eventually(t, 10*time.Second, "alice's log message", alice.seen(&alice.logs, "for alice"))
		bob.mu.Lock()
		defer bob.mu.Unlock()
		if len(bob.logs) != 0 {
			t.Errorf("bob (level error) got info messages %v: the levels are shared", bob.logs)
		}
	})
	t.Run("separate upstream sessions", func(t *testing.T) {
		sa, sb := alice.text(t, "whoami", nil), bob.text(t, "whoami", nil)
		if sa == sb {
			t.Errorf("alice and bob share the upstream session %q", sa)
		}
	})
	t.Run("sampling elicitation roots", func(t *testing.T) {
		if got := alice.text(t, "sample", map[string]any{"message": "hi"}); got != "sampled: alice says hi" {
			t.Errorf("sample = %q", got)
		}
		if got := bob.text(t, "elicit", map[string]any{"message": "name?"}); got != "accept bob" {
			t.Errorf("elicit = %q", got)
		}
		if got := alice.text(t, "roots", nil); got != "file:///alice" {
			t.Errorf("roots = %q", got)
		}
	})
	t.Run("resources prompts completion", func(t *testing.T) {
		ctx := fdCtx(t, 20*time.Second)
		lr, err := alice.cs.ListResources(ctx, nil)
		if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "test://doc" {
			t.Fatalf("resources/list = %+v, %v", lr, err)
		}
		rr, err := alice.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://doc"})
		if err != nil || rr.Contents[0].Text != "doc of up" {
			t.Fatalf("resources/read = %+v, %v", rr, err)
		}
		if err := alice.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://doc"}); err != nil {
			t.Fatal(err)
		}
		up.Touch("test://doc")
		eventually(t, 10*time.Second, "the resource update", alice.seen(&alice.updated, "test://doc"))
		gp, err := bob.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "bob"}})
		if err != nil || gp.Messages[0].Content.(*mcp.TextContent).Text != "hello bob from up" {
			t.Fatalf("prompts/get = %+v, %v", gp, err)
		}
		cr, err := bob.cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "greet"},
			Argument: mcp.CompleteParamsArgument{Name: "who", Value: "bo"}})
		if err != nil || len(cr.Completion.Values) != 1 || cr.Completion.Values[0] != "bo-done" {
			t.Fatalf("completion/complete = %+v, %v", cr, err)
		}
		bob.mu.Lock()
		defer bob.mu.Unlock()
		if len(bob.updated) != 0 {
			t.Errorf("bob got alice's resource updates %v", bob.updated)
		}
	})
	t.Run("cancellation", func(t *testing.T) {
		before := up.cance.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := alice.cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait"}); err == nil {
			t.Fatal("wait returned before it was cancelled")
		}
		eventually(t, 10*time.Second, "the member's tool cancelled", func() bool { return up.cance.Load() > before })
	})
	t.Run("closing the client closes its upstream sessions", func(t *testing.T) {
		n := up.Sessions()
		_ = bob.cs.Close()
		eventually(t, 10*time.Second, "bob's upstream session closed", func() bool { return up.Sessions() < n })
	})
}

// A member that restarted forgets every session: whether it says so with
// 404 (the spec) or 400 (server-everything), the agent opens the client's
// session again, replays its state and no call fails.
func TestFrontDoorUpstreamRestart(t *testing.T) {
	skipShort(t)
	for _, lost := range []int{http.StatusNotFound, http.StatusBadRequest} {
		t.Run(fmt.Sprint(lost), func(t *testing.T) {
			up := startRelayUpstream(t, "up", lost)
			a := startAgent(t, relayFleet(t, up))
			c := connectRelay(t, a.URL(), "alice")
			if err := c.cs.SetLoggingLevel(fdCtx(t, 10*time.Second), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
				t.Fatal(err)
			}
			first := c.text(t, "whoami", nil)
			up.Restart()
			second := c.text(t, "whoami", nil) // must not fail
			if first == second {
				t.Fatalf("same upstream session %q after a restart", first)
			}
			c.text(t, "log", map[string]any{"message": "after restart"})
			eventually(t, 10*time.Second, "a log message at the replayed level", c.seen(&c.logs, "after restart"))
		})
	}
}

// When the primary dies, the client's session moves to the backup with its
// log level and subscription: updates keep coming.
func TestFrontDoorFailoverMovesSession(t *testing.T) {
	skipShort(t)
	primary := startRelayUpstream(t, "primary", http.StatusNotFound)
	backup := startRelayUpstream(t, "backup", http.StatusBadRequest)
	a := startAgent(t, relayFleet(t, primary, backup))
	c := connectRelay(t, a.URL(), "alice")
	ctx := fdCtx(t, 30*time.Second)
	if err := c.cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	if got := c.text(t, "whoami", nil); !strings.HasPrefix(got, "primary ") {
		t.Fatalf("whoami = %q, want the primary", got)
	}
	if err := c.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://doc"}); err != nil {
		t.Fatal(err)
	}
	primary.Stop()
	// The subscription moves as soon as the agent sees the session die.
	eventually(t, 15*time.Second, "the subscription on the backup", func() bool {
		backup.Touch("test://doc")
		return c.seen(&c.updated, "test://doc")()
	})
	got := c.text(t, "whoami", nil)
	if !strings.HasPrefix(got, "backup ") {
		t.Fatalf("whoami after the primary died = %q, want the backup", got)
	}
	if lvl := backup.Level(strings.TrimPrefix(got, "backup ")); lvl != "info" {
		t.Errorf("log level on the backup = %q, want the client's info replayed", lvl)
	}
	c.text(t, "log", map[string]any{"message": "from backup"})
	eventually(t, 10*time.Second, "the backup's log message", c.seen(&c.logs, "from backup"))
}

// read_timeout is the longest silence of a member, not a cap on a call: a
// tool that reports progress every 200 ms for 3 s completes under a 1 s
// read_timeout (the scale of a 2-minute job, fast).
func TestFrontDoorLongCallWithProgress(t *testing.T) {
	skipShort(t)
	up := startRelayUpstream(t, "up", http.StatusNotFound)
	a := startAgent(t, writeConfig(t, fmt.Sprintf("mcp_servers:\n"+
		"  up: {mode: remote, endpoint: %s, health_check_interval_s: 1, http: {read_timeout: 1}}\n"+
		"  grp: {mode: group, strategy: priority, tool_access: {mode: front_door}, members: [{id: up, priority: 1}]}\n", up.URL())))
	c := connectRelay(t, a.URL(), "alice")
	params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"n": 15}}
	params.SetProgressToken("long-1")
	start := time.Now()
	res, err := c.cs.CallTool(fdCtx(t, 30*time.Second), params)
	if err != nil {
		t.Fatalf("a 3 s call with progress under a 1 s read_timeout: %v (after %s)", err, time.Since(start))
	}
	if got := fdText(res); res.IsError || got != "slow done" {
		t.Fatalf("result %q (isError %v), want slow done", got, res.IsError)
	}
	eventually(t, 10*time.Second, "15 progress notifications", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.progress) == 15
	})
}
