// Package faultproxy is a TCP proxy for end-to-end tests that can cut the
// path it carries: with the kernel offering no netem, this is how a test
// breaks one process's link to another while both keep running.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the dial to the target for one accepted connection.
const dialTimeout = 5 * time.Second

// Proxy forwards TCP connections from a loopback port to a target address.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup // the accept loop and every connection's pipes

	mu       sync.Mutex
	cut      bool
	closed   bool
	conns    map[net.Conn]struct{} // both ends of every open pair
	accepted int                   // connections accepted, cut or not
	refused  int                   // connections closed at once while cut
}

// Start listens on a free loopback port and forwards every connection to
// target (host:port) until Close.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port: connect there instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut breaks the path: every open connection is closed, and until Restore
// new connections are accepted and closed at once (the client sees its
// connection reset or closed, as across a dead link's far end).
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.takeConns()
	p.mu.Unlock()
	closeAll(conns)
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Stats returns how many connections were accepted, and how many of them
// were closed at once because the path was cut.
func (p *Proxy) Stats() (accepted, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.refused
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines. It may be called more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.takeConns()
	p.mu.Unlock()
	err := p.ln.Close()
	closeAll(conns)
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// takeConns empties the connection set; p.mu must be held.
func (p *Proxy) takeConns() []net.Conn {
	out := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	clear(p.conns)
	return out
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		p.accepted++
		cut, closed := p.cut, p.closed
		if cut {
			p.refused++
		}
		p.mu.Unlock()
		if cut || closed {
			_ = c.Close()
			continue
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward dials the target for client and copies both ways until either
// side ends or the path is cut; then both connections are closed.
func (p *Proxy) forward(client net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialling
		p.mu.Unlock()
		_ = client.Close()
		_ = up.Close()
		return
	}
	p.conns[client], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()

	var once sync.Once
	end := func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, up)
			p.mu.Unlock()
			_ = client.Close()
			_ = up.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(up, client); end() })
	wg.Go(func() { _, _ = io.Copy(client, up); end() })
	wg.Wait()
}
