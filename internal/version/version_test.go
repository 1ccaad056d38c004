package version

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStampedBuild(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	defer func() { Version, Commit, Date = old[0], old[1], old[2] }()
	Version, Commit, Date = "v1.2.3", "0123456789abcdef0123", "2026-12-04T16:00:00Z"
	i := Get()
	if s := i.String(); !strings.HasPrefix(s, "v1.2.3 (commit 0123456789ab, built 2026-12-04T16:00:00Z, go") {
		t.Errorf("String() = %q", s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector("hangar_build_info"))
	want := `
# HELP hangar_build_info Build information (always 1): version, commit, build date and Go version.
# TYPE hangar_build_info gauge
hangar_build_info{commit="0123456789abcdef0123",date="2026-12-04T16:00:00Z",goversion="` + i.GoVersion + `",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hangar_build_info"); err != nil {
		t.Error(err)
	}
}
