// Package endpoints reads lists of endpoints given on the command line or
// in the environment, where a list may come as repeated flags, one
// comma-separated string, or both.
package endpoints

import "strings"

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
