package mathserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// shutdownGrace is how long a stopping HTTP server waits for requests in
// flight before it closes their connections.
const shutdownGrace = time.Second

// config is what the command line and the environment ask for.
type config struct {
	host, port string
	transport  string
	name       string
	stateless  bool
	adminAddr  string
	seed       uint64
	faults     Faults
}

// Run is the mcp-math command: it parses args (flags, with MCP_HOST,
// MCP_PORT, MCP_TRANSPORT and MCP_NAME as fallbacks), serves until ctx ends
// (or, in stdio mode, until stdin closes) and returns nil after a clean stop.
// In stdio mode stdout carries the protocol and nothing else; the one
// status line goes to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, os.LookupEnv, os.Stdin, stdout, stderr)
}

func run(ctx context.Context, args []string, env func(string) (string, bool),
	stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	srv := New(Options{Name: cfg.name, Stateless: cfg.stateless, Seed: cfg.seed})
	if err := srv.SetFaults(cfg.faults); err != nil {
		return fmt.Errorf("fault flags: %w", err)
	}
	defer srv.Close()
	if cfg.transport == "stdio" {
		return runStdio(ctx, srv, cfg, stdin, stdout, stderr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, cfg.port))
	if err != nil {
		return fmt.Errorf("listen: %w (set a free port with --port or MCP_PORT, 0 picks one)", err)
	}
	fmt.Fprintf(stderr, "mcp-math listening name=%s addr=%s\n", cfg.name, ln.Addr())
	return serveHTTP(ctx, srv, ln, srv.Handler())
}

func parseArgs(args []string, env func(string) (string, bool), stderr io.Writer) (config, error) {
	envOr := func(key, def string) string {
		if v, ok := env(key); ok && v != "" {
			return v
		}
		return def
	}
	var cfg config
	fs := flag.NewFlagSet("mcp-math", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.host, "host", envOr("MCP_HOST", "127.0.0.1"), "HTTP listen host (env MCP_HOST)")
	fs.StringVar(&cfg.port, "port", envOr("MCP_PORT", "8080"), "HTTP listen port, 0 for a free one (env MCP_PORT)")
	fs.StringVar(&cfg.transport, "transport", envOr("MCP_TRANSPORT", "http"), "http or stdio (env MCP_TRANSPORT)")
	fs.StringVar(&cfg.name, "name", envOr("MCP_NAME", DefaultName), "server name, returned by whoami (env MCP_NAME)")
	fs.BoolVar(&cfg.stateless, "stateless", false, "serve the stateless Streamable HTTP mode")
	fs.StringVar(&cfg.adminAddr, "admin-addr", "", "stdio mode: also serve the admin API on this host:port")
	fs.Uint64Var(&cfg.seed, "seed", 0, "seed of the random source for --fail-rate (0: time-based)")
	failTools := fs.String("fail-tools", "", `comma-separated tools whose calls fail ("*": every tool)`)
	fs.Float64Var(&cfg.faults.FailRate, "fail-rate", 1, "probability (0..1) that a call to a --fail-tools tool fails")
	mode := fs.String("fail-mode", string(FailRPC), "how a failed call is answered: rpc (JSON-RPC -32603) or tool (isError)")
	fs.DurationVar(&cfg.faults.Latency, "latency", 0, "delay added before every tools/call answer, e.g. 50ms")
	fs.BoolVar(&cfg.faults.Hang, "hang", false, "every tools/call blocks until the client gives up (tools/list still answers)")
	fs.BoolVar(&cfg.faults.FailList, "fail-list", false, "tools/list fails with JSON-RPC -32603")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q: mcp-math takes only flags (see --help)", fs.Arg(0))
	}
	cfg.faults.FailTools = ParseToolList(*failTools)
	cfg.faults.FailMode = FailMode(*mode)
	if isSet(fs, "fail-rate") && len(cfg.faults.FailTools) == 0 {
		return config{}, errors.New("--fail-rate has no effect without --fail-tools: add --fail-tools add,divide (or '*')")
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

func (c config) validate() error {
	if p, err := strconv.Atoi(c.port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q (--port or MCP_PORT): want a number from 0 to 65535 (0 picks a free port)", c.port)
	}
	if c.transport != "http" && c.transport != "stdio" {
		return fmt.Errorf("transport %q (--transport or MCP_TRANSPORT): want http or stdio", c.transport)
	}
	if c.name == "" {
		return errors.New("--name is empty: give the server a name, e.g. --name my-mcp")
	}
	if err := c.faults.Validate(); err != nil {
		return fmt.Errorf("fault flags: %w", err)
	}
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// serveHTTP serves h on ln until ctx ends, then stops accepting, releases
// hung calls and gives requests in flight shutdownGrace to finish.
func serveHTTP(ctx context.Context, srv *Server, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close() // standing SSE streams never go idle
	}
	<-served
	return nil
}

// runStdio serves MCP on stdin/stdout, and the admin API on cfg.adminAddr
// if it is set, until stdin closes or ctx ends.
func runStdio(ctx context.Context, srv *Server, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	admin := ""
	adminDone := make(chan error, 1)
	if cfg.adminAddr != "" {
		ln, err := net.Listen("tcp", cfg.adminAddr)
		if err != nil {
			return fmt.Errorf("listen on --admin-addr: %w", err)
		}
		admin = " admin=" + ln.Addr().String()
		go func() { adminDone <- serveHTTP(ctx, srv, ln, srv.adminHandler()) }()
	} else {
		adminDone <- nil
	}
	fmt.Fprintf(stderr, "mcp-math ready name=%s transport=stdio%s\n", cfg.name, admin)
	t := &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
	err := srv.mcp.Run(ctx, t)
	stopped := ctx.Err() != nil
	cancel()
	if aerr := <-adminDone; aerr != nil {
		return fmt.Errorf("admin api: %w", aerr)
	}
	if err != nil && !stopped {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
