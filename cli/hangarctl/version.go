package hangarctl

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hangarmesh/hangar/internal/version"
)

// versionInfo is what `hangarctl version` prints: the build information
// internal/version holds (stamped by `make build` with -ldflags).
type versionInfo = version.Info

// readVersion returns this binary's version; tests replace it.
var readVersion = version.Get

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
			_, err := fmt.Fprintf(a.stdout, "hangarctl %s\n", v)
			return err
		},
	}
}
