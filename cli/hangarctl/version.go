package hangarctl

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is hangarctl's version, set at build time with
// -ldflags "-X github.com/hangarmesh/hangar/cli/hangarctl.Version=v1.2.3";
// empty means the module version from the build info.
var Version string

// versionInfo is what `hangarctl version` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// readVersion returns this binary's version; tests replace it.
var readVersion = func() versionInfo {
	v := Version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return versionInfo{Version: v, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hangarctl's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			v := readVersion()
			switch a.output {
			case formatJSON, formatYAML:
				raw, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("encode version: %w", err)
				}
				if a.output == formatYAML {
					raw, err = jsonToYAML(raw)
				} else {
					raw, err = indentJSON(raw)
				}
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(raw)
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "hangarctl %s (%s, %s)\n", v.Version, v.Go, v.Platform)
			return err
		},
	}
}
