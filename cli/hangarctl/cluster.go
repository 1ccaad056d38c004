package hangarctl

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) clusterCommand() *cobra.Command {
	c := parent("cluster", "Show the control plane itself")
	var watch bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show control-plane replicas, the leader, etcd health, the snapshot version and agents",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.show(cmd.Context(), watch, "", func(ctx context.Context, p printer) error {
				c, err := a.dial()
				if err != nil {
					return err
				}
				st, err := call(ctx, c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ClusterStatus, error) {
					return s.GetClusterStatus(ctx, &hangarv1.GetClusterStatusRequest{})
				})
				if err != nil {
					return err
				}
				return p.print(st, func(w io.Writer) error { return clusterTable(w, st) })
			})
		},
	}
	addWatchFlag(status, &watch)
	c.AddCommand(status)
	return c
}

func clusterTable(w io.Writer, st *hangarv1.ClusterStatus) error {
	healthy := 0
	for _, e := range st.GetEtcd() {
		if e.GetHealthy() {
			healthy++
		}
	}
	fmt.Fprintf(w, "Leader: %s   Snapshot: %d   Agents: %d   etcd: %d/%d healthy\n\n",
		orDash(st.GetLeader()), st.GetSnapshotVersion(), st.GetAgents(), healthy, len(st.GetEtcd()))
	fmt.Fprintln(w, "REPLICA\tADDRESS\tLEADER")
	for _, r := range st.GetReplicas() {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.GetName(), orDash(r.GetAddress()), yesNo(r.GetLeader()))
	}
	fmt.Fprintln(w, "\nETCD ENDPOINT\tHEALTHY\tLEADER\tVERSION\tDB SIZE\tERROR")
	for _, e := range st.GetEtcd() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.GetEndpoint(), yesNo(e.GetHealthy()), yesNo(e.GetLeader()),
			orDash(e.GetVersion()), bytesIEC(e.GetDbSizeBytes()), orDash(e.GetError()))
	}
	return nil
}
