// Package version holds the build's version, commit and date, stamped at
// link time by `make build` and the container images:
//
//	go build -ldflags "-X github.com/hangarmesh/hangar/internal/version.Version=v1.2.3 \
//	  -X github.com/hangarmesh/hangar/internal/version.Commit=abc1234 \
//	  -X github.com/hangarmesh/hangar/internal/version.Date=2026-12-04T16:00:00Z" ./...
//
// It also builds the build_info metric each daemon exports.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set with -ldflags -X at build time; the defaults mark an unstamped build.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is one binary's build information.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// Get returns the build information; an unstamped `go build` or `go run`
// falls back to the VCS data the Go toolchain recorded, if any.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the one-line form `--version` prints after the program name.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s, %s)", i.Version, shortCommit(i.Commit), i.Date, i.GoVersion, i.Platform)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// Collector returns a gauge named name (hangar_build_info or
// mcp_hangar_build_info), always 1, labelled with the build information,
// so dashboards can count versions across a fleet during an upgrade.
func Collector(name string) prometheus.Collector {
	i := Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: name,
		Help: "Build information (always 1): version, commit, build date and Go version.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "date": i.Date,
			"goversion": i.GoVersion},
	}, func() float64 { return 1 })
}
