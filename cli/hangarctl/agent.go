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
		Short: "List connected agents, their replica and the snapshot version each has ACKed",
		Args:  noArgs,
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
	fmt.Fprintln(w, "AGENT\tHOST\tVERSION\tREPLICA\tSNAPSHOT\tCONNECTED\tLAST REPORT\tPROBES\tLABELS")
	for _, ag := range resp.GetAgents() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ag.GetId(), orDash(ag.GetHost()), orDash(ag.GetVersion()),
			orDash(ag.GetReplica()), acked(ag.GetAckedVersion(), resp.GetSnapshotVersion()),
			date(ag.GetConnected()), clock(ag.GetLastReport()), list(ag.GetProbes()), labels(ag.GetLabels()))
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
