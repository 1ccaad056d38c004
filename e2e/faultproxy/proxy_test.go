package faultproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hangarmesh/hangar/e2e/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every line back until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// roundTrip sends a line and returns the echo, or the read error.
func roundTrip(c net.Conn, line string) (string, error) {
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func TestProxyForwardsCutsAndRestores(t *testing.T) {
	p, err := faultproxy.Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	open := dial(t, p.Addr())
	if got, err := roundTrip(open, "before"); err != nil || got != "before" {
		t.Fatalf("through the proxy: %q, %v; want the echo", got, err)
	}

	p.Cut()
	if _, err := roundTrip(open, "during"); err == nil {
		t.Error("a connection open before Cut still carries data")
	}
	fresh := dial(t, p.Addr()) // accepted, then closed at once
	if got, err := roundTrip(fresh, "during"); err == nil {
		t.Errorf("a connection made while cut got %q, want it closed", got)
	}
	if accepted, refused := p.Stats(); accepted != 2 || refused != 1 {
		t.Errorf("Stats() = %d accepted, %d refused; want 2, 1", accepted, refused)
	}

	p.Restore()
	if got, err := roundTrip(dial(t, p.Addr()), "after"); err != nil || got != "after" {
		t.Fatalf("after Restore: %q, %v; want the echo", got, err)
	}

	kept := dial(t, p.Addr())
	if _, err := roundTrip(kept, "x"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := roundTrip(kept, "closed"); err == nil {
		t.Error("a connection still carries data after Close")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts connections after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestProxyClosesClientWhenTargetIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now

	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = roundTrip(dial(t, p.Addr()), "hello")
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection to a dead target: %v; want it closed", err)
	}
}
