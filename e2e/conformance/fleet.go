package conformance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/e2e/proc"
)

var (
	serverReady = regexp.MustCompile(`Conformance server listening at (\S+)`)
	agentReady  = regexp.MustCompile(`msg=http_server_started addr=(\S+)`)
)

// startServer starts the Go SDK's conformance server, stateful, on a free
// loopback port and waits until it accepts connections.
func startServer(ctx context.Context, bin, name string) (*proc.Process, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := proc.Start(proc.Spec{Name: name, Path: filepath.Join(bin, "everything-server"),
		Args: []string{"-http", addr, "-stateless=false"}, Ready: serverReady}, 30*time.Second)
	if err != nil {
		return nil, "", err
	}
	// It logs the line before it binds: wait for the port.
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, "http://" + addr + "/mcp", nil
		}
		select {
		case <-ctx.Done():
			p.Kill()
			return nil, "", fmt.Errorf("%s never accepted connections on %s: %w", name, addr, ctx.Err())
		case <-p.Done():
			return nil, "", fmt.Errorf("%s exited: %s", name, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentConfig is a front_door group named conf of the members at urls, in
// priority order.
func agentConfig(urls []string) string {
	cfg := "mcp_servers:\n"
	members := ""
	for i, u := range urls {
		cfg += fmt.Sprintf("  c%d: {mode: remote, endpoint: %s}\n", i+1, u)
		members += fmt.Sprintf("{id: c%d, priority: %d}, ", i+1, i+1)
	}
	cfg += fmt.Sprintf("  conf: {mode: group, strategy: priority, tool_access: {mode: front_door}, members: [%s]}\n", members[:len(members)-2])
	return cfg
}

// startAgent starts hangar-agent serving HTTP on a free port in front of
// urls and waits until it is ready and lists the members' tools (so the
// scores do not depend on how fast the agent learns them).
func startAgent(ctx context.Context, bin, dir string, urls []string) (*proc.Process, string, error) {
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(agentConfig(urls)), 0o644); err != nil {
		return nil, "", fmt.Errorf("write agent config: %w", err)
	}
	p, err := proc.Start(proc.Spec{Name: "hangar-agent", Path: filepath.Join(bin, "hangar-agent"),
		Args: []string{"--config", path, "serve", "--http", "--port", "0"}, Ready: agentReady}, 30*time.Second)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + p.Ready()
	if err := waitTools(ctx, base); err != nil {
		p.Kill()
		return nil, "", fmt.Errorf("%w; agent output:\n%s", err, p.Output())
	}
	return p, base + "/mcp", nil
}

// waitTools waits until the agent says ready and its front door lists the
// conformance server's tools.
func waitTools(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	for {
		if toolsListed(ctx, hc, base) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent at %s never listed the members' tools: %w", base, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func toolsListed(ctx context.Context, hc *http.Client, base string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "hangar-conformance", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return false
	}
	defer cs.Close()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(res.Tools, func(t *mcp.Tool) bool { return t.Name == "test_simple_text" })
}
