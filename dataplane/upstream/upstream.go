// Package upstream holds the agent's MCP client connection to one upstream
// member: one session shared by every concurrent call, opened lazily (by the
// first call or probe), dropped when it breaks and re-opened on the next use.
// A call that finds its session lost (404 from the server, a crashed child)
// is retried once on a fresh session, since the server never processed it.
package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hangarmesh/hangar/dataplane/outcome"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	"github.com/hangarmesh/hangar/internal/tlsfiles"
)

// Version is the client version the agent announces to upstreams.
var Version = "dev"

// Options configure a Client. The zero value uses the real clock and discards logs.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// OnSessionChange, if set, is called (without locks held) when a session
	// opens (open=true) or is dropped (open=false).
	OnSessionChange func(open bool)
}

// Client is the connection to one upstream member. It is safe for concurrent use.
type Client struct {
	srv  *fleetfile.Server
	opts Options
	http *http.Client
	// slots bounds the calls in flight (max_concurrency).
	slots chan struct{}

	mu      sync.Mutex
	sess    *mcp.ClientSession
	dialing chan struct{} // non-nil while a session is being opened
	dialErr error         // result of the last open, for waiters
	tools   map[string]*mcp.Tool
	info    *mcp.InitializeResult // the shared session's last initialize answer
	lastUse time.Time
	closed  bool

	wg sync.WaitGroup // session watchers
}

// DefaultMaxConcurrency caps the calls in flight to one member when its
// configuration sets no max_concurrency.
const DefaultMaxConcurrency = 256

// New returns a client for srv. No connection is made until first use. It
// fails only on a bad TLS setting (an unreadable CA file).
func New(srv *fleetfile.Server, opts Options) (*Client, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	limit := srv.MaxConcurrency
	if limit <= 0 {
		limit = DefaultMaxConcurrency
	}
	c := &Client{srv: srv, opts: opts, slots: make(chan struct{}, limit)}
	if srv.Mode == fleetfile.ModeRemote {
		tlsConf, err := tlsConfig(srv.TLS, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("mcp_servers.%s.tls: %w", srv.ID, err)
		}
		dialer := &net.Dialer{Timeout: srv.HTTP.ConnectTimeout, KeepAlive: 30 * time.Second}
		c.http = &http.Client{Transport: &headerTransport{
			headers: srv.Headers,
			base: &http.Transport{
				DialContext:         dialer.DialContext,
				TLSClientConfig:     tlsConf,
				TLSHandshakeTimeout: srv.HTTP.ConnectTimeout,
				MaxIdleConns:        limit,
				MaxIdleConnsPerHost: limit,
				IdleConnTimeout:     90 * time.Second,
			},
		}}
	}
	return c, nil
}

// tlsConfig trusts ca_cert_path (followed as it changes: package
// tlsfiles) or the system pool.
func tlsConfig(t fleetfile.TLSConfig, log *slog.Logger) (*tls.Config, error) {
	m, err := tlsfiles.Load(tlsfiles.Files{CAFile: t.CAFile, CAFlag: "ca_cert_path"}, log)
	if err != nil {
		return nil, err
	}
	return m.ClientConfig(t.InsecureSkipVerify), nil
}

// ID returns the member's server id.
func (c *Client) ID() string { return c.srv.ID }

// Config returns the member's configuration.
func (c *Client) Config() *fleetfile.Server { return c.srv }

// Connected reports whether a session is open now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// CallTool calls tool name with the raw JSON arguments on the member. The
// caller's ctx bounds the call; the member's read timeout is applied too.
func (c *Client) CallTool(ctx context.Context, name string, args json.RawMessage) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.srv.HTTP.ReadTimeout)
	defer cancel()
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	c.touch()
	params := &mcp.CallToolParams{Name: name}
	if len(args) > 0 {
		params.Arguments = args
	}
	var res *mcp.CallToolResult
	err = c.onSession(ctx, func(cs *mcp.ClientSession) (err error) {
		res, err = cs.CallTool(ctx, params)
		return err
	})
	return res, err
}

// acquire takes one of the member's max_concurrency slots, waiting while
// they are all taken; release gives it back.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("member %s: %d calls in flight (max_concurrency): %w", c.srv.ID, cap(c.slots), ctx.Err())
	}
}

// ListTools lists the member's tools (every page), refreshing the cache that
// Tool reads. Probes use it: a member that answers tools/list is alive.
func (c *Client) ListTools(ctx context.Context) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	err := c.onSession(ctx, func(cs *mcp.ClientSession) (err error) {
		tools, err = listAll(ctx, cs)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.setTools(tools)
	return tools, nil
}

// onSession runs fn on the member's shared session, opening one if needed.
// A session fn finds broken is dropped; when the member forgot it (404: it
// restarted, and did not run the request), fn runs once more on a new
// session. This is the one session-retry path of CallTool, ListTools and
// Forward.
func (c *Client) onSession(ctx context.Context, fn func(cs *mcp.ClientSession) error) error {
	for attempt := 0; ; attempt++ {
		cs, err := c.session(ctx)
		if err != nil {
			return err
		}
		err = fn(cs)
		if err == nil {
			return nil
		}
		if broken(err) {
			c.drop(cs)
			if attempt == 0 && forgotten(err) {
				continue
			}
		}
		return err
	}
}

// Tool returns the cached definition of a tool, from the last tools/list.
func (c *Client) Tool(name string) (*mcp.Tool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tools[name]
	return t, ok
}

// Tools returns the cached tool list (nil before the first successful list).
func (c *Client) Tools() []*mcp.Tool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tools == nil {
		return nil
	}
	out := make([]*mcp.Tool, 0, len(c.tools))
	for _, t := range c.tools {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *mcp.Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// InitializeResult returns the member's answer to the shared session's
// initialize (capabilities, instructions), nil before a session opened.
func (c *Client) InitializeResult() *mcp.InitializeResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Reset drops the current session; the next use opens a new one.
func (c *Client) Reset() {
	c.mu.Lock()
	cs := c.sess
	c.mu.Unlock()
	if cs != nil {
		c.drop(cs)
	}
}

// touch records a use by a call (probes do not count: they must not keep
// an idle subprocess alive).
func (c *Client) touch() {
	c.mu.Lock()
	c.lastUse = c.opts.Clock.Now()
	c.mu.Unlock()
}

// IdleFor reports how long the client has gone unused while a session is open
// (zero without a session).
func (c *Client) IdleFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return 0
	}
	return c.opts.Clock.Now().Sub(c.lastUse)
}

// Close ends the session (stopping a subprocess child) and waits for the
// client's goroutines. Later calls fail with outcome.ErrNotDelivered.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cs := c.sess
	c.sess = nil
	c.mu.Unlock()
	var err error
	if cs != nil {
		err = cs.Close()
	}
	c.wg.Wait()
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	return err
}

// session returns the open session or opens one; concurrent callers share a
// single open.
func (c *Client) session(ctx context.Context) (*mcp.ClientSession, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("member %s is shut down: %w", c.srv.ID, outcome.ErrNotDelivered)
		}
		if cs := c.sess; cs != nil {
			c.mu.Unlock()
			return cs, nil
		}
		if wait := c.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c.mu.Lock()
			err, cs := c.dialErr, c.sess
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if cs != nil {
				return cs, nil
			}
			continue
		}
		done := make(chan struct{})
		c.dialing = done
		c.mu.Unlock()

		cs, tools, err := c.open(ctx)

		c.mu.Lock()
		c.dialing = nil
		c.dialErr = err
		if err == nil {
			if c.closed {
				c.mu.Unlock()
				close(done)
				_ = cs.Close()
				return nil, fmt.Errorf("member %s is shut down: %w", c.srv.ID, outcome.ErrNotDelivered)
			}
			c.sess = cs
			c.tools = toolMap(tools)
			c.info = cs.InitializeResult()
			c.lastUse = c.opts.Clock.Now()
			c.wg.Add(1)
			go c.watch(cs)
		}
		c.mu.Unlock()
		close(done)
		if err != nil {
			return nil, err
		}
		if f := c.opts.OnSessionChange; f != nil {
			f(true)
		}
		return cs, nil
	}
}

// open connects, initializes and lists tools. It is bounded by the member's
// connect timeout (plus the read timeout for the handshake), not by the
// first caller's context, since other callers may be waiting on it.
func (c *Client) open(ctx context.Context) (*mcp.ClientSession, []*mcp.Tool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.srv.HTTP.ConnectTimeout+c.srv.HTTP.ReadTimeout)
	defer cancel()
	t, err := c.transport()
	if err != nil {
		return nil, nil, err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "hangar-agent", Version: Version}, &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{},
	})
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w: %w", c.srv.ID, outcome.ErrNotDelivered, err)
	}
	tools, err := listAll(ctx, cs)
	if err != nil {
		_ = cs.Close()
		return nil, nil, fmt.Errorf("list tools of %s: %w: %w", c.srv.ID, outcome.ErrNotDelivered, err)
	}
	c.opts.Logger.Debug("session_opened", "mcp_server", c.srv.ID, "tools", len(tools))
	return cs, tools, nil
}

func (c *Client) transport() (mcp.Transport, error) {
	switch c.srv.Mode {
	case fleetfile.ModeRemote:
		return &mcp.StreamableClientTransport{
			Endpoint:             c.srv.Endpoint,
			HTTPClient:           c.http,
			MaxRetries:           -1,
			DisableStandaloneSSE: true,
		}, nil
	case fleetfile.ModeSubprocess:
		if len(c.srv.Command) == 0 {
			return nil, fmt.Errorf("member %s has no command: %w", c.srv.ID, outcome.ErrNotDelivered)
		}
		cmd := exec.Command(c.srv.Command[0], c.srv.Command[1:]...)
		cmd.Env = os.Environ()
		for k, v := range c.srv.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = &logWriter{log: c.opts.Logger, id: c.srv.ID}
		return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil
	}
	return nil, fmt.Errorf("member %s: mode %q cannot be called", c.srv.ID, c.srv.Mode)
}

// watch drops the session when its connection ends (a crashed child, a
// closed connection), so the next use opens a fresh one.
func (c *Client) watch(cs *mcp.ClientSession) {
	defer c.wg.Done()
	_ = cs.Wait()
	c.drop(cs)
}

func (c *Client) drop(cs *mcp.ClientSession) {
	c.mu.Lock()
	current := c.sess == cs
	if current {
		c.sess = nil
	}
	c.mu.Unlock()
	if !current {
		return
	}
	_ = cs.Close()
	c.opts.Logger.Debug("session_dropped", "mcp_server", c.srv.ID)
	if f := c.opts.OnSessionChange; f != nil {
		f(false)
	}
}

func (c *Client) setTools(tools []*mcp.Tool) {
	c.mu.Lock()
	c.tools = toolMap(tools)
	c.mu.Unlock()
}

func toolMap(tools []*mcp.Tool) map[string]*mcp.Tool {
	m := make(map[string]*mcp.Tool, len(tools))
	for _, t := range tools {
		m[t.Name] = t
	}
	return m
}

func listAll(ctx context.Context, cs *mcp.ClientSession) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// broken reports whether err means the session can no longer be used.
func broken(err error) bool {
	return forgotten(err) || errors.Is(err, mcp.ErrConnectionClosed)
}

// forgotten reports whether err means the member does not know the session
// (it restarted): it did not run the request, which may be sent again.
func forgotten(err error) bool {
	return errors.Is(err, mcp.ErrSessionMissing) || errors.Is(err, errSessionGone)
}

// headerTransport adds the configured headers to every upstream request.
type headerTransport struct {
	headers map[string]string
	base    http.RoundTripper
}

func (h *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.headers) > 0 {
		r = r.Clone(r.Context())
		for k, v := range h.headers {
			r.Header.Set(k, v)
		}
	}
	return h.base.RoundTrip(r)
}

// logWriter turns a child's stderr into debug log lines.
type logWriter struct {
	log *slog.Logger
	id  string
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Debug("subprocess_stderr", "mcp_server", w.id, "line", string(p))
	return len(p), nil
}
