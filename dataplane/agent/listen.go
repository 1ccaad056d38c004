package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
)

// fdReserve is how many file descriptors the connection cap leaves for the
// agent itself: upstream connections, health checks, subprocess pipes,
// the control-plane stream, logs. A quarter of the limit, at least 256.
func fdReserve(nofile uint64) uint64 { return max(256, nofile/4) }

// openFileLimit returns the process's soft RLIMIT_NOFILE. Go raises it to
// the hard limit at start (os package, Go 1.19+); ok is false where it is
// not known.
func openFileLimit() (n uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}

// connectionCap returns how many client connections to serve at once: the
// setting, lowered when it would leave fewer than fdReserve descriptors of
// nofile for the agent's own use.
func connectionCap(want int, nofile uint64, known bool) (capped int, lowered bool) {
	if !known || nofile <= fdReserve(nofile) {
		if known {
			return max(1, int(nofile/2)), true
		}
		return want, false
	}
	budget := nofile - fdReserve(nofile)
	if uint64(want) > budget {
		return int(budget), true
	}
	return want, false
}

// listenHTTP listens on addr and caps the open client connections: past
// the cap, new connections wait in the kernel's accept queue until one
// closes, so client load can never take the descriptors upstream
// connections need.
func listenHTTP(addr string, l Limits, log *slog.Logger) (net.Listener, int, error) {
	nofile, known := openFileLimit()
	n, lowered := connectionCap(l.MaxConnections, nofile, known)
	if lowered {
		log.Warn("max_connections_lowered", "max_connections", l.MaxConnections, "now", n, "open_file_limit", nofile,
			"reason", fmt.Sprintf("leaves %d file descriptors for upstreams; raise the limit (ulimit -n, LimitNOFILE=) to serve more", nofile-uint64(n)))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("listen on %s: %w (is another process using the port? choose one with --port)", addr, err)
	}
	return netutil.LimitListener(ln, n), n, nil
}

// connWatch counts open client connections and forgets, for shutdown, the
// ones that have not sent a request yet (http.Server.Shutdown would wait
// on them); it warns when the cap is reached.
type connWatch struct {
	limit int
	m     *doorMetrics
	log   *slog.Logger

	mu       sync.Mutex
	open     int
	fresh    map[net.Conn]struct{}
	lastWarn time.Time
}

func newConnWatch(limit int, m *doorMetrics, log *slog.Logger) *connWatch {
	return &connWatch{limit: limit, m: m, log: log, fresh: map[net.Conn]struct{}{}}
}

func (c *connWatch) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateNew:
		c.fresh[conn] = struct{}{}
		c.open++
		if c.open >= c.limit && time.Since(c.lastWarn) > time.Minute {
			c.lastWarn = time.Now()
			c.log.Warn("connection_limit_reached", "max_connections", c.limit,
				"effect", "new client connections wait to be accepted until one closes")
		}
	case http.StateClosed, http.StateHijacked:
		delete(c.fresh, conn)
		c.open--
	default:
		delete(c.fresh, conn)
	}
	c.m.conns.Set(float64(c.open))
}

// closeFresh closes the connections that never sent a request.
func (c *connWatch) closeFresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.fresh {
		_ = conn.Close()
	}
}
