package hangarctl

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) agentCommand() *cobra.Command {
	c := parent("agent", "Show connected hangar-agents")
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List connected agents: version, replica, config source, sync state and the snapshot each has ACKed",
		Long: "List connected agents, as istioctl proxy-status. SOURCE is where an agent's fleet file comes from\n" +
			"(control-plane, or local: its own --config). SYNC is SYNCED (runs the current snapshot), STALE\n" +
			"(has not ACKed it yet), NACKED (refused it: the reason follows) or LOCAL (runs a local fleet file\n" +
			"that differs from the stored one; its reports do not count toward decisions).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ListAgentsResponse, error) {
				return s.ListAgents(ctx, &hangarv1.ListAgentsRequest{})
			})
			if err != nil {
				return err
			}
			return printer{a.output, a.stdout}.print(resp, func(w io.Writer) error { return agentListTable(w, resp) })
		},
	})
	return c
}

func agentListTable(w io.Writer, resp *hangarv1.ListAgentsResponse) error {
	fmt.Fprintln(w, "AGENT\tHOST\tVERSION\tREPLICA\tSOURCE\tSYNC\tSNAPSHOT\tCONNECTED\tLAST REPORT\tPROBES\tLABELS")
	var nacks []string
	for _, ag := range resp.GetAgents() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ag.GetId(), orDash(ag.GetHost()), orDash(ag.GetVersion()),
			orDash(ag.GetReplica()), orDash(ag.GetConfigSource()), orDash(ag.GetSync()), acked(ag.GetAckedVersion(), resp.GetSnapshotVersion()),
			date(ag.GetConnected()), clock(ag.GetLastReport()), list(ag.GetProbes()), labels(ag.GetLabels()))
		if ag.GetNackError() != "" {
			nacks = append(nacks, fmt.Sprintf("%s NACKED snapshot %d: %s", ag.GetId(), ag.GetNackedVersion(), ag.GetNackError()))
		}
	}
	if len(nacks) > 0 {
		fmt.Fprintln(w)
		for _, n := range nacks {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// acked is the snapshot version an agent runs: "12", "11 (behind 12)" or
// "none".
func acked(version, current uint64) string {
	switch {
	case version == 0:
		return "none"
	case version < current:
		return fmt.Sprintf("%d (behind %d)", version, current)
	}
	return strconv.FormatUint(version, 10)
}
