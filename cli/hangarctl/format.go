package hangarctl

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Time layouts, in the local time zone.
const (
	clockLayout = "15:04:05"
	dateLayout  = "2006-01-02 15:04:05"
)

// clock formats ts as local wall-clock time, "-" when unset.
func clock(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(clockLayout)
}

// date formats ts as local date and time, "-" when unset.
func date(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(dateLayout)
}

// memberState is "ready", "degraded", …
func memberState(s hangarv1.MemberState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MEMBER_STATE_"))
}

// breakerState is "closed", "open" or "half-open".
func breakerState(s hangarv1.BreakerState) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.String(), "BREAKER_STATE_")), "_", "-")
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// list joins names with ", ", "-" when there are none.
func list(names []string) string {
	return orDash(strings.Join(names, ", "))
}

// rate formats calls per second.
func rate(perSecond float64) string {
	return fmt.Sprintf("%.1f", perSecond)
}

// millis formats a latency in seconds as milliseconds, "-" when no call
// was measured.
func millis(seconds float64, calls bool) string {
	if !calls {
		return "-"
	}
	return fmt.Sprintf("%.1f", seconds*1000)
}

// probes is "2/2 ready", "1/2 ready, 1 degraded", or "-" with no probers.
func probes(probers []string, ready, degraded int32) string {
	if len(probers) == 0 && ready == 0 && degraded == 0 {
		return "-"
	}
	s := fmt.Sprintf("%d/%d ready", ready, len(probers))
	if degraded > 0 {
		s += fmt.Sprintf(", %d degraded", degraded)
	}
	return s
}

// rotation is "in", "out: REASON" or "drained".
func rotation(m *hangarv1.MemberStatus) string {
	switch {
	case m.GetDrained():
		return "drained"
	case m.GetInRotation():
		return "in"
	}
	return "out: " + orDash(m.GetReason())
}

// ejecting is "1/3 agents": agents with the member out of local rotation
// of the agents that called it, "-" when none called it.
func ejecting(m *hangarv1.MemberStatus) string {
	if m.GetCallers() == 0 && len(m.GetEjecting()) == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d agents", len(m.GetEjecting()), m.GetCallers())
}

// eventSubject is what an event is about: "group/server", or whichever is
// set, or "" for a fleet-wide event.
func eventSubject(e *hangarv1.Event) string {
	switch {
	case e.GetGroup() != "" && e.GetServer() != "":
		return e.GetGroup() + "/" + e.GetServer()
	case e.GetServer() != "":
		return e.GetServer()
	}
	return e.GetGroup()
}

// eventLine is "15:04:05 member_out_of_rotation my-mcp: message", with
// layout the time's format and subject what the event is about (omitted
// when empty).
func eventLine(e *hangarv1.Event, layout, subject string) string {
	t := "-"
	if e.GetTime() != nil {
		t = e.GetTime().AsTime().Local().Format(layout)
	}
	line := t + " " + e.GetKind()
	if subject != "" {
		line += " " + subject
	}
	if e.GetMessage() != "" {
		line += ": " + e.GetMessage()
	}
	return line
}

// labels formats a label map as sorted "k=v,k=v", "-" when empty.
func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return orDash(strings.Join(keys, ","))
}

// bytesIEC formats a size as "24.0 MiB".
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// yesNo is "yes" or "no".
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
