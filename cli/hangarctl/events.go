package hangarctl

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) eventsCommand() *cobra.Command {
	var follow bool
	var group, server string
	var limit int32
	c := &cobra.Command{
		Use:   "events",
		Short: "Print the event log (state changes, failovers, config applies); --follow streams new ones",
		Example: "  hangarctl events --group my-mcp-group --limit 20\n" +
			"  hangarctl events --follow -o json | jq -c .",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageError{cmd, fmt.Errorf("--limit %d: want 0 (the server's default) or more", limit)}
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			p := printer{a.output, a.stdout}
			n := 0
			req := &hangarv1.WatchEventsRequest{Limit: limit, Follow: follow, Group: group, Server: server}
			err = c.events(cmd.Context(), req, func(e *hangarv1.Event) error {
				if n++; n > 1 {
					if _, err := io.WriteString(a.stdout, p.separatorBetweenEvents()); err != nil {
						return err
					}
				}
				return p.print(e, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, eventLine(e, dateLayout, eventSubject(e)))
					return err
				})
			})
			if follow {
				return quiet(cmd.Context(), err)
			}
			return err
		},
	}
	f := c.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep streaming new events (Ctrl-C stops)")
	f.StringVar(&group, "group", "", "only events of this group")
	f.StringVar(&server, "server", "", "only events of this server")
	f.Int32Var(&limit, "limit", 0, "at most this many past events (0: the server's default, 100)")
	_ = c.RegisterFlagCompletionFunc("group", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return a.completeGroups(cmd, nil, "")
	})
	_ = c.RegisterFlagCompletionFunc("server", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return a.completeServers(cmd, nil, "")
	})
	return c
}

// separatorBetweenEvents separates YAML documents; table lines and JSON
// documents need nothing.
func (p printer) separatorBetweenEvents() string {
	if p.format == formatYAML {
		return "---\n"
	}
	return ""
}
