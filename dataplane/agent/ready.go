package agent

import (
	"net/http"

	"github.com/hangarmesh/hangar/dataplane/router"
)

// readiness is the body of /health/ready.
type readiness struct {
	Status string `json:"status"` // "ready" or "not ready"
	// Unavailable lists the groups that cannot take a call now, and why.
	Unavailable []router.Unavailable `json:"unavailable,omitempty"`
}

// readyHandler answers /health/ready: 503 while no group the agent serves
// has a member that can take a call (all out of rotation, or the breaker
// OPEN), 200 otherwise; the body names the groups that cannot serve
// (docs/design.md §3.4). The router in force is read at each request.
func readyHandler(current func() *router.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r := current()
		if r == nil {
			writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready",
				Unavailable: []router.Unavailable{{Reason: "no fleet configuration yet"}}})
			return
		}
		ok, unavailable := r.Readiness()
		body := readiness{Status: "ready", Unavailable: unavailable}
		code := http.StatusOK
		if !ok {
			body.Status, code = "not ready", http.StatusServiceUnavailable
		}
		writeJSON(w, code, body)
	})
}
