package hangarctl

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) groupCommand() *cobra.Command {
	c := parent("group", "Show server groups")
	c.AddCommand(a.groupListCommand(), a.groupStatusCommand())
	return c
}

func (a *app) groupListCommand() *cobra.Command {
	var watch bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List groups: strategy, state, breaker, active member, rotation, snapshot ACKs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.show(cmd.Context(), watch, "", func(ctx context.Context, p printer) error {
				resp, err := a.listGroups(ctx)
				if err != nil {
					return err
				}
				return p.print(resp, func(w io.Writer) error { return groupListTable(w, resp) })
			})
		},
	}
	addWatchFlag(c, &watch)
	return c
}

func (a *app) listGroups(ctx context.Context) (*hangarv1.ListGroupsResponse, error) {
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	return call(ctx, c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ListGroupsResponse, error) {
		return s.ListGroups(ctx, &hangarv1.ListGroupsRequest{})
	})
}

func groupListTable(w io.Writer, resp *hangarv1.ListGroupsResponse) error {
	fmt.Fprintln(w, "GROUP\tSTRATEGY\tSTATE\tBREAKER\tACTIVE\tIN ROTATION\tSNAPSHOT ACKED")
	for _, g := range resp.GetGroups() {
		in := 0
		for _, m := range g.GetMembers() {
			if m.GetInRotation() {
				in++
			}
		}
		b := g.GetBreaker()
		breaker := breakerState(b.GetState())
		if b.GetState() != hangarv1.BreakerState_BREAKER_STATE_CLOSED {
			breaker += fmt.Sprintf(" (%d/%d agents)", b.GetOpenAgents(), b.GetCallingAgents())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d/%d\n", g.GetId(), g.GetStrategy(), g.GetState(), breaker,
			orDash(g.GetActiveMember()), in, len(g.GetMembers()), g.GetAgentsAcked(), g.GetAgentsTotal())
	}
	return nil
}

func (a *app) groupStatusCommand() *cobra.Command {
	var watch bool
	c := &cobra.Command{
		Use:   "status GROUP",
		Short: "Show a group: breaker, active member, members' state, rotation, probes, rates, latency, events",
		Example: "  hangarctl group status my-mcp-group\n" +
			"  hangarctl group status my-mcp-group --watch",
		Args:              exactArgs("GROUP"),
		ValidArgsFunction: a.completeGroups,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.show(cmd.Context(), watch, args[0], func(ctx context.Context, p printer) error {
				g, err := a.groupStatus(ctx, args[0])
				if err != nil {
					return err
				}
				return p.print(g, func(w io.Writer) error { return groupStatusTable(w, g) })
			})
		},
	}
	addWatchFlag(c, &watch)
	return c
}

func (a *app) groupStatus(ctx context.Context, group string) (*hangarv1.GroupStatus, error) {
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	return call(ctx, c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.GroupStatus, error) {
		return s.GetGroupStatus(ctx, &hangarv1.GetGroupStatusRequest{Group: group})
	})
}

func groupStatusTable(w io.Writer, g *hangarv1.GroupStatus) error {
	fmt.Fprintf(w, "Group: %s   Strategy: %s   State: %s   Snapshot: %d (%d/%d agents)\n",
		g.GetId(), g.GetStrategy(), g.GetState(), g.GetSnapshotVersion(), g.GetAgentsAcked(), g.GetAgentsTotal())
	if g.GetDescription() != "" {
		fmt.Fprintf(w, "Description: %s\n", g.GetDescription())
	}
	fmt.Fprintf(w, "Breaker: %s\n", breakerLine(g.GetBreaker()))
	active := g.GetActiveMember()
	if active == "" {
		active = "none"
	}
	fmt.Fprintf(w, "Active: %s\n\n", active)

	fmt.Fprintln(w, "MEMBER\tPRIORITY\tWEIGHT\tSTATE\tROTATION\tPROBES\tOK/s\tERR/s\tP50(ms)\tP99(ms)\tEJECTING")
	for _, m := range g.GetMembers() {
		calls := m.GetOkPerSecond()+m.GetErrorPerSecond() > 0
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetId(), m.GetPriority(), m.GetWeight(),
			memberState(m.GetState()), rotation(m), probes(m.GetProbers(), m.GetProbesReady(), m.GetProbesDegraded()),
			rate(m.GetOkPerSecond()), rate(m.GetErrorPerSecond()),
			millis(m.GetP50Seconds(), calls), millis(m.GetP99Seconds(), calls), ejecting(m))
	}

	if len(g.GetRecentEvents()) == 0 {
		fmt.Fprintln(w, "\nRecent events: none")
		return nil
	}
	fmt.Fprintln(w, "\nRecent events:")
	for _, e := range g.GetRecentEvents() {
		subject := e.GetServer()
		if subject == "" {
			subject = e.GetGroup()
		}
		fmt.Fprintln(w, "  "+eventLine(e, clockLayout, subject))
	}
	return nil
}

// breakerLine is "closed (0 consecutive failures)" or
// "OPEN — 3/4 calling agents, half-opens at 15:04:05".
func breakerLine(b *hangarv1.BreakerStatus) string {
	switch b.GetState() {
	case hangarv1.BreakerState_BREAKER_STATE_OPEN:
		s := fmt.Sprintf("OPEN — %d/%d calling agents", b.GetOpenAgents(), b.GetCallingAgents())
		if b.GetHalfOpensAt() != nil {
			s += ", half-opens at " + clock(b.GetHalfOpensAt())
		}
		return s
	case hangarv1.BreakerState_BREAKER_STATE_HALF_OPEN:
		return fmt.Sprintf("HALF-OPEN — %d/%d calling agents, admitting probe calls", b.GetOpenAgents(), b.GetCallingAgents())
	}
	return fmt.Sprintf("closed (%d consecutive failures)", b.GetConsecutiveFailures())
}

// completeGroups completes a group name from the control plane.
func (a *app) completeGroups(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	resp, err := a.listGroups(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, g := range resp.GetGroups() {
		names = append(names, g.GetId())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
