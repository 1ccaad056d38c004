package hangarctl

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) serverCommand() *cobra.Command {
	c := parent("server", "Show upstream MCP servers across the fleet")
	c.AddCommand(a.serverListCommand(), a.serverStatusCommand())
	return c
}

func (a *app) serverListCommand() *cobra.Command {
	var watch bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List servers: state, probes, call rates and latency, groups",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.show(cmd.Context(), watch, "", func(ctx context.Context, p printer) error {
				resp, err := a.listServers(ctx)
				if err != nil {
					return err
				}
				return p.print(resp, func(w io.Writer) error { return serverListTable(w, resp) })
			})
		},
	}
	addWatchFlag(c, &watch)
	return c
}

func (a *app) listServers(ctx context.Context) (*hangarv1.ListServersResponse, error) {
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	return call(ctx, c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ListServersResponse, error) {
		return s.ListServers(ctx, &hangarv1.ListServersRequest{})
	})
}

// serverState is "ready", or "degraded: probers" when a reason is given.
func serverState(s *hangarv1.ServerStatus) string {
	if s.GetReason() == "" {
		return memberState(s.GetState())
	}
	return memberState(s.GetState()) + ": " + s.GetReason()
}

func serverListTable(w io.Writer, resp *hangarv1.ListServersResponse) error {
	fmt.Fprintln(w, "SERVER\tMODE\tENDPOINT\tSTATE\tPROBES\tOK/s\tERR/s\tP50(ms)\tP99(ms)\tGROUPS")
	for _, s := range resp.GetServers() {
		calls := s.GetOkPerSecond()+s.GetErrorPerSecond() > 0
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.GetId(), orDash(s.GetMode()), orDash(s.GetEndpoint()),
			serverState(s), probes(s.GetProbers(), s.GetProbesReady(), s.GetProbesDegraded()),
			rate(s.GetOkPerSecond()), rate(s.GetErrorPerSecond()),
			millis(s.GetP50Seconds(), calls), millis(s.GetP99Seconds(), calls), list(s.GetGroups()))
	}
	return nil
}

func (a *app) serverStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "status SERVER",
		Short:             "Show a server: state, probers, call rates, latency and last minute's calls by outcome",
		Args:              exactArgs("SERVER"),
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			s, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ServerStatus, error) {
				return s.GetServerStatus(ctx, &hangarv1.GetServerStatusRequest{Server: args[0]})
			})
			if err != nil {
				return err
			}
			return printer{a.output, a.stdout}.print(s, func(w io.Writer) error { return serverStatusTable(w, s) })
		},
	}
}

func serverStatusTable(w io.Writer, s *hangarv1.ServerStatus) error {
	calls := s.GetOkPerSecond()+s.GetErrorPerSecond() > 0
	fmt.Fprintf(w, "Server:\t%s\n", s.GetId())
	fmt.Fprintf(w, "Mode:\t%s\n", orDash(s.GetMode()))
	fmt.Fprintf(w, "Endpoint:\t%s\n", orDash(s.GetEndpoint()))
	fmt.Fprintf(w, "State:\t%s\n", serverState(s))
	fmt.Fprintf(w, "Groups:\t%s\n", list(s.GetGroups()))
	fmt.Fprintf(w, "Probes:\t%s (probers: %s)\n", probes(s.GetProbers(), s.GetProbesReady(), s.GetProbesDegraded()), list(s.GetProbers()))
	fmt.Fprintf(w, "Calls/s:\t%s ok, %s errors\n", rate(s.GetOkPerSecond()), rate(s.GetErrorPerSecond()))
	fmt.Fprintf(w, "Latency:\tp50 %s ms, p99 %s ms\n", millis(s.GetP50Seconds(), calls), millis(s.GetP99Seconds(), calls))
	if len(s.GetCalls()) == 0 {
		fmt.Fprintln(w, "\nLast minute's calls: none")
		return nil
	}
	fmt.Fprintln(w, "\nLast minute's calls:")
	outcomes := make([]string, 0, len(s.GetCalls()))
	for k := range s.GetCalls() {
		outcomes = append(outcomes, k)
	}
	sort.Strings(outcomes)
	fmt.Fprintln(w, "  OUTCOME\tCALLS")
	for _, k := range outcomes {
		fmt.Fprintf(w, "  %s\t%d\n", k, s.GetCalls()[k])
	}
	return nil
}

// completeServers completes a server name from the control plane.
func (a *app) completeServers(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	resp, err := a.listServers(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, s := range resp.GetServers() {
		names = append(names, s.GetId())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
