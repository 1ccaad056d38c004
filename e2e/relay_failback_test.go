package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// updates counts the resource updates a relay client received.
func (rc *relayClient) updates() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.updated)
}

// A subscription follows the client's calls: when the primary dies it moves
// to the backup, and when the calls come back to the primary it leaves the
// backup. After the failback each change reaches the client once: the
// backup no longer holds the client's subscription, so a change there is
// not relayed, and a change on the primary arrives exactly once.
func TestFrontDoorFailbackMovesSubscription(t *testing.T) {
	skipShort(t)
	primary := startRelayUpstream(t, "primary", http.StatusNotFound)
	backup := startRelayUpstream(t, "backup", http.StatusNotFound)
	a := startAgent(t, relayFleet(t, primary, backup))
	c := connectRelay(t, a.URL(), "alice")
	ctx := fdCtx(t, 60*time.Second)
	if got := c.text(t, "whoami", nil); !strings.HasPrefix(got, "primary ") {
		t.Fatalf("whoami = %q, want the primary", got)
	}
	if err := c.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://doc"}); err != nil {
		t.Fatal(err)
	}
	primary.Touch("test://doc")
	eventually(t, 10*time.Second, "the primary's update", func() bool { return c.updates() == 1 })

	primary.Stop()
	eventually(t, 15*time.Second, "updates from the backup", func() bool {
		backup.Touch("test://doc")
		return c.updates() > 1
	})
	if got := c.text(t, "whoami", nil); !strings.HasPrefix(got, "backup ") {
		t.Fatalf("whoami after the primary died = %q, want the backup", got)
	}

	primary.Restart()
	eventually(t, 30*time.Second, "failback to the primary", func() bool {
		return strings.HasPrefix(c.text(t, "whoami", nil), "primary ")
	})
	// The primary got the subscription replayed; the backup gave it up.
	before := c.updates()
	backup.Touch("test://doc") // nobody on the backup is subscribed for alice any more
	primary.Touch("test://doc")
	eventually(t, 10*time.Second, "the primary's update after the failback", func() bool { return c.updates() > before })
	c.text(t, "whoami", nil) // a round trip, so a stray update from the backup would be in by now
	backup.Touch("test://doc")
	primary.Touch("test://doc")
	eventually(t, 10*time.Second, "the second change on the primary", func() bool { return c.updates() >= before+2 })
	c.text(t, "whoami", nil)
	if got := c.updates() - before; got != 2 {
		t.Fatalf("after the failback, 2 changes on the primary and 2 on the backup gave %d updates, want 2 (one per change on the member serving the client)", got)
	}
}
