// Package endpoints reads lists of endpoints given on the command line or
// in the environment, where a list may come as repeated flags, one
// comma-separated string, or both.
package endpoints

import (
	"net"
	"strings"
)

// Split flattens values that may each hold several comma-separated
// endpoints, trimming spaces and dropping empty entries.
func Split(values []string) []string {
	var out []string
	for _, s := range values {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// IsLoopback reports whether host (a name or an IP, without port) is the
// loopback: "localhost" or an address in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
