package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// cancelWait bounds the best-effort notifications/cancelled request.
const cancelWait = 5 * time.Second

// cancelRemote tells the member, best effort and off the caller's path,
// that the forwarded request in body will not be waited for
// (notifications/cancelled), as the SDK client does for the calls it
// abandons: a call whose context ends, because its caller or the router
// gave up on it, is cancelled on the member too.
func (c *Client) cancelRemote(sessionID, version string, body []byte, reason error) {
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.ID) == 0 {
		return
	}
	why, _ := json.Marshal(reason.Error())
	note := fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%s,"reason":%s}}`, req.ID, why)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), cancelWait)
		defer cancel()
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.srv.Endpoint, bytes.NewReader(note))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("Mcp-Protocol-Version", version)
		if sessionID != "" {
			r.Header.Set("Mcp-Session-Id", sessionID)
		}
		if resp, err := c.http.Do(r); err == nil {
			drain(resp.Body)
		}
	}()
}
