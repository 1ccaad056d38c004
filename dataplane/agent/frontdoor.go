package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// The front door's own refusals, as JSON-RPC errors (id null: the request
// was not read). Codes in the implementation-defined server error range.
const (
	codeUnauthorized = -32001
	codeRateLimited  = -32002
	codeTooLarge     = -32003
	codeUnavailable  = -32004
)

// doorMetrics counts what the front door refused.
type doorMetrics struct {
	rejected *prometheus.CounterVec // by reason
	conns    prometheus.Gauge
}

func newDoorMetrics(reg prometheus.Registerer, limit int) *doorMetrics {
	m := &doorMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_hangar_http_rejected_total",
			Help: "HTTP requests the front door refused, by reason (unauthorized, rate_limited, request_too_large, " +
				"body_timeout, response_too_large, not_ready)."}, []string{"reason"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_hangar_http_connections",
			Help: "Open HTTP client connections."}),
	}
	limitGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcp_hangar_http_connections_limit",
		Help: "Most HTTP client connections served at once (--max-connections, after the file-descriptor budget)."})
	limitGauge.Set(float64(limit))
	reg.MustRegister(m.rejected, m.conns, limitGauge)
	return m
}

// rpcError answers with a JSON-RPC error object (id null) and the HTTP
// status. With close set the connection closes right after it: the
// request's body is neither read nor waited for (net/http would otherwise
// read up to 256 KiB of it, for as long as the client takes).
func rpcError(w http.ResponseWriter, status, code int, msg string, close bool) {
	if close {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// requireToken checks "Authorization: Bearer <token>" (the scheme in any
// case, RFC 7235) when token is set. It decides from the headers alone: a
// refused request's body is never read, and its connection closes at once.
func requireToken(token string, m *doorMetrics, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return requireTokenFrom(func() string { return token }, m, next)
}

// requireTokenFrom is requireToken with the token from get at each request
// (a token file followed as it changes).
func requireTokenFrom(get func() string, m *doorMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(get())) != 1 {
			m.rejected.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="hangar-agent"`)
			rpcError(w, http.StatusUnauthorized, codeUnauthorized, "unauthorized: send Authorization: Bearer <token>", true)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the credentials of a Bearer authorization header.
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

// limitBody refuses a body declared larger than the limit before reading
// it, bounds a body sent without a length, and gives the client
// l.BodyTimeout to send it. The deadline is lifted once the body is read,
// so a long call or a standing stream is not cut.
func limitBody(l Limits, m *doorMetrics, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > l.MaxRequestBytes {
			m.rejected.WithLabelValues("request_too_large").Inc()
			rpcError(w, http.StatusRequestEntityTooLarge, codeTooLarge,
				fmt.Sprintf("request body of %d bytes is larger than the agent's limit of %d bytes (--max-request-bytes)",
					r.ContentLength, l.MaxRequestBytes), true)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(l.BodyTimeout)); err == nil {
				r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, l.MaxRequestBytes), rc: rc,
					onTimeout: func() {
						m.rejected.WithLabelValues("body_timeout").Inc()
						log.Debug("http_body_timeout", "remote", r.RemoteAddr, "timeout", l.BodyTimeout.String())
					}}
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, l.MaxRequestBytes)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline when the body has been
// read to its end. After an error the deadline stays: whatever remains is
// not waited for, and the connection closes after the response.
type deadlineBody struct {
	io.ReadCloser
	rc        *http.ResponseController
	onTimeout func()
	done      bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		switch {
		case err == io.EOF:
			_ = b.rc.SetReadDeadline(time.Time{})
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.onTimeout()
		}
	}
	return n, err
}

// capResponse bounds the response to a POST to max bytes. A response that
// grows past it is cut: the handler's writes fail, and the connection is
// aborted so the client cannot take a truncated answer for a whole one.
func capResponse(max int64, m *doorMetrics, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		cw := &cappedWriter{ResponseWriter: w, left: max}
		next.ServeHTTP(cw, r)
		if cw.exceeded {
			m.rejected.WithLabelValues("response_too_large").Inc()
			log.Warn("http_response_too_large", "remote", r.RemoteAddr, "limit", max,
				"hint", "raise --max-response-bytes or ask for less (smaller hangar_call batches)")
			if !cw.started {
				rpcError(w, http.StatusBadGateway, codeTooLarge,
					fmt.Sprintf("the response is larger than the agent's limit of %d bytes (--max-response-bytes)", max), true)
				return
			}
			panic(http.ErrAbortHandler)
		}
	})
}

// errResponseTooLarge fails the writes of a response past its limit.
var errResponseTooLarge = errors.New("agent: response larger than --max-response-bytes")

type cappedWriter struct {
	http.ResponseWriter
	left     int64
	started  bool // headers or bytes went to the client
	exceeded bool
}

func (c *cappedWriter) WriteHeader(code int) {
	c.started = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if c.exceeded || int64(len(p)) > c.left {
		c.exceeded = true
		return 0, errResponseTooLarge
	}
	c.started = true
	c.left -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (c *cappedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// rateLimit is a token bucket per client address; a client over its rate
// gets 429 with Retry-After. Buckets that are full again are forgotten, so
// the table holds only clients that sent requests in the last burst/rate
// seconds.
type rateLimit struct {
	limit rate.Limit
	burst int
	m     *doorMetrics

	mu      sync.Mutex
	clients map[string]*rate.Limiter
	adds    int
}

func newRateLimit(l Limits, m *doorMetrics) *rateLimit {
	return &rateLimit{limit: rate.Limit(l.RateLimit), burst: l.RateBurst, m: m, clients: map[string]*rate.Limiter{}}
}

func (rl *rateLimit) wrap(next http.Handler) http.Handler {
	if rl.limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rl.allow(clientAddr(r), time.Now()) {
			rl.m.rejected.WithLabelValues("rate_limited").Inc()
			w.Header().Set("Retry-After", fmt.Sprint(max(1, int(1/float64(rl.limit)+0.999))))
			rpcError(w, http.StatusTooManyRequests, codeRateLimited,
				fmt.Sprintf("too many requests: this agent allows %g per second per client with bursts of %d (--rate-limit, --rate-burst)",
					float64(rl.limit), rl.burst), true)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes a token from client's bucket at now.
func (rl *rateLimit) allow(client string, now time.Time) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	lim, ok := rl.clients[client]
	if !ok {
		lim = rate.NewLimiter(rl.limit, rl.burst)
		rl.clients[client] = lim
		if rl.adds++; rl.adds%1024 == 0 {
			rl.forgetFull(now)
		}
	}
	return lim.AllowN(now, 1)
}

// forgetFull drops buckets that have refilled: a new one is the same.
func (rl *rateLimit) forgetFull(now time.Time) {
	for c, lim := range rl.clients {
		if lim.TokensAt(now) >= float64(rl.burst) {
			delete(rl.clients, c)
		}
	}
}

// clientAddr is the client's IP address (without the port).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
