//lint:file-ignore SA1019 the relay of deprecated MCP features is what these tests check

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A client that declares sampling and then never answers the member's
// sampling/createMessage: the member's own timeout ends its request (3 s,
// longer than the member's 1 s read_timeout) and the call returns what the
// member answers. The agent does not count the member's wait for the client
// as the member's silence: no timeout is charged to it, the call does not
// fail over and the member stays in rotation.
func TestFrontDoorClientNeverAnswers(t *testing.T) {
	skipShort(t)
	primary := startRelayUpstream(t, "primary", http.StatusNotFound)
	backup := startRelayUpstream(t, "backup", http.StatusNotFound)
	a := startAgent(t, writeConfig(t, fmt.Sprintf("mcp_servers:\n"+
		"  primary: {mode: remote, endpoint: %s, health_check_interval_s: 1, http: {read_timeout: 1}}\n"+
		"  backup: {mode: remote, endpoint: %s, health_check_interval_s: 1, http: {read_timeout: 1}}\n"+
		"  grp: {mode: group, strategy: priority, tool_access: {mode: front_door}, members: [{id: primary, priority: 1}, {id: backup, priority: 2}]}\n",
		primary.URL(), backup.URL())))

	asked := make(chan struct{}, 1)
	quit := make(chan struct{}) // lets the handler go when the test ends, so Close does not wait on it
	silent := mcp.NewClient(&mcp.Implementation{Name: "silent", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, _ *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			select {
			case asked <- struct{}{}:
			default:
			}
			select { // never answers; gives up when the member cancels its request
			case <-ctx.Done():
			case <-quit:
			}
			return nil, errors.New("no answer")
		},
	})
	cs, err := silent.Connect(fdCtx(t, 20*time.Second), &mcp.StreamableClientTransport{Endpoint: a.URL(), MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	t.Cleanup(func() { close(quit) })

	start := time.Now()
	res, err := cs.CallTool(fdCtx(t, 30*time.Second), &mcp.CallToolParams{Name: "sample_within",
		Arguments: map[string]any{"n": 3000, "message": "hi"}})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("call: %v (after %s)", err, took)
	}
	select {
	case <-asked:
	default:
		t.Fatal("the client was never asked to sample")
	}
	if got := fdText(res); res.IsError || !strings.HasPrefix(got, "primary gave up sampling") {
		t.Fatalf("result %q (isError %v) after %s, want the primary's own answer that it gave up", got, res.IsError, took)
	}
	if got := (&relayClient{cs: cs}).text(t, "whoami", nil); !strings.HasPrefix(got, "primary ") {
		t.Errorf("whoami after the unanswered request = %q, want the primary still serving", got)
	}
	mfs := fdScrape(t, a)
	for _, m := range mfs["mcp_hangar_attempts_total"].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		if o := labels["outcome"]; o != "ok" && o != "tool_error" {
			t.Errorf("attempts_total%v = %v: the member was charged for the client's silence", labels, m.Counter.GetValue())
		}
	}
	if v := fdValue(mfs["mcp_hangar_group_failovers_total"], map[string]string{"group": "grp"}); v != nil && *v > 0 {
		t.Errorf("group_failovers_total = %v, want none", *v)
	}
	if v := fdValue(mfs["mcp_hangar_group_member_in_rotation"], map[string]string{"group": "grp", "member": "primary"}); v == nil || *v != 1 {
		t.Errorf("group_member_in_rotation{primary} = %v, want 1", v)
	}
}
