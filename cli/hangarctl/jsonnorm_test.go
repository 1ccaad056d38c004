package hangarctl

import (
	"strings"
	"testing"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// TestJSONEnumsAsWordsAndNumbersAsNumbers: scripts read "half_open" and
// 12, not "BREAKER_STATE_HALF_OPEN" and "12" (as kubectl and istioctl print).
func TestJSONEnumsAsWordsAndNumbersAsNumbers(t *testing.T) {
	m := &hangarv1.GroupStatus{Id: "g", Breaker: &hangarv1.BreakerStatus{State: hangarv1.BreakerState_BREAKER_STATE_HALF_OPEN},
		SnapshotVersion: 1 << 40}
	out, err := encodeJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state": "half_open"`, `"snapshot_version": 1099511627776`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	y, err := encodeYAML(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "snapshot_version: 1099511627776\n") || !strings.Contains(string(y), "state: half_open\n") {
		t.Errorf("YAML:\n%s", y)
	}
}
