package thirdparty

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hangarmesh/hangar/e2e/proc"
)

// everythingReady is the line server-everything prints (on stderr) once it
// listens. It prints the port it was given, not the one bound.
var everythingReady = regexp.MustCompile(`MCP Streamable HTTP Server listening on port (\d+)`)

// Everything is a running @modelcontextprotocol/server-everything in
// Streamable HTTP mode. Its CLI takes the transport as its first argument
// and the port from $PORT (default 3001), and binds every interface. It
// answers an unknown session id with HTTP 400 ("Bad Request: No valid
// session ID provided"), not the spec's 404.
type Everything struct {
	Port int
	tl   *Tooling
	proc *proc.Process
}

// StartEverything starts server-everything on a free port and waits until it
// listens. The caller ends it with Kill or Stop.
func (tl *Tooling) StartEverything() (*Everything, error) {
	var lastErr error
	for range 10 { // a free port can be taken between the probe and the bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		e, err := tl.startEverythingOn(port)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "already in use") {
			break
		}
	}
	return nil, lastErr
}

func (tl *Tooling) startEverythingOn(port int) (*Everything, error) {
	p, err := proc.Start(proc.Spec{
		Name:  "server-everything",
		Path:  tl.Node(),
		Args:  []string{tl.pkg("@modelcontextprotocol/server-everything/dist/index.js"), "streamableHttp"},
		Env:   []string{"PORT=" + strconv.Itoa(port)},
		Ready: everythingReady,
	}, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &Everything{Port: port, tl: tl, proc: p}, nil
}

// Restart starts a new server-everything on the same port (the old one
// must have exited): every session it had is gone, as after a crash. It
// first waits until the port can be bound again, so that a start which
// fails says why.
func (e *Everything) Restart() (*Everything, error) {
	if err := waitBindable(e.Port, 10*time.Second); err != nil {
		return nil, err
	}
	return e.tl.startEverythingOn(e.Port)
}

// waitBindable returns once a listener can be opened on the loopback port,
// or an error after timeout.
func waitBindable(port int, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d is still taken after %s: %w", port, timeout, err)
		}
		time.Sleep(10 * time.Millisecond) // poll the condition; nothing signals a freed port
	}
}

// URL is its MCP endpoint on loopback.
func (e *Everything) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/mcp", e.Port) }

// PID is the node process' id.
func (e *Everything) PID() int { return e.proc.PID() }

// Output is what it printed so far.
func (e *Everything) Output() string { return e.proc.Output() }

// Kill ends it with SIGKILL and waits for the exit.
func (e *Everything) Kill() { e.proc.Kill() }

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
