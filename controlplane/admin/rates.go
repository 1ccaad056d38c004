package admin

// Outcome classes (docs/design.md §3.3) that make up the ok and error rates.
var (
	okClasses    = []string{"ok"}
	errorClasses = []string{"connect_error", "timeout", "transport_error", "server_error"}
)

// minute is a member's calls over the last minute, merged over agents.
type minute struct {
	byClass map[string]uint64 // attempts by outcome class
	buckets []uint64          // attempts by latency bucket (latency.Bounds)
}

// rates returns the ok and error calls per second.
func (m minute) rates() (ok, errs float64) {
	return m.perSecond(okClasses), m.perSecond(errorClasses)
}

func (m minute) perSecond(classes []string) float64 {
	var n uint64
	for _, c := range classes {
		n += m.byClass[c]
	}
	return float64(n) / rateWindow.Seconds()
}
