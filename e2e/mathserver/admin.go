package mathserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Admin API paths.
const (
	FaultsPath = "/admin/faults" // GET: current Faults; PUT: replace them
	StatsPath  = "/admin/stats"  // GET: Stats
	ResetPath  = "/admin/reset"  // POST: zero the counters
)

// maxAdminBody bounds a PUT /admin/faults body.
const maxAdminBody = 64 << 10

func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET "+FaultsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT "+FaultsPath, s.putFaults)
	mux.HandleFunc("GET "+StatsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST "+ResetPath, func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
}

// adminHandler serves only the admin API (stdio mode's --admin-addr).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	s.registerAdmin(mux)
	return mux
}

func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad faults body: %w", err))
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad faults body: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// adminError is the JSON body of an admin API error.
type adminError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, adminError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails
}

// AdminClient drives the admin API of a running mcp-math. Its methods are
// safe for concurrent use. It keeps no idle connections, so tests using it
// leak no goroutines.
type AdminClient struct {
	base string
	hc   *http.Client
}

// NewAdminClient returns a client for the server at baseURL, such as
// "http://127.0.0.1:8080". The MCP endpoint URL ("http://127.0.0.1:8080/mcp")
// is accepted too.
func NewAdminClient(baseURL string) *AdminClient {
	base := strings.TrimSuffix(strings.TrimSuffix(baseURL, "/"), MCPPath)
	return &AdminClient{
		base: base,
		hc:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// Faults returns the faults in force.
func (c *AdminClient) Faults(ctx context.Context) (Faults, error) {
	var f Faults
	err := c.do(ctx, http.MethodGet, FaultsPath, nil, &f)
	return f, err
}

// SetFaults replaces the faults in force. The server rejects invalid faults
// and keeps the old ones.
func (c *AdminClient) SetFaults(ctx context.Context, f Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode faults: %w", err)
	}
	return c.do(ctx, http.MethodPut, FaultsPath, body, nil)
}

// Stats returns the server's request counters.
func (c *AdminClient) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, StatsPath, nil, &st)
	return st, err
}

// Reset zeroes the server's request counters.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, ResetPath, nil, nil)
}

func (c *AdminClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e adminError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}
