package hangarctl

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) memberCommand() *cobra.Command {
	c := parent("member", "Take a group member out of rotation, or put it back")
	c.AddCommand(
		&cobra.Command{
			Use:               "drain GROUP MEMBER",
			Short:             "Take a member out of rotation on every agent (it stays out until undrained)",
			Args:              exactArgs("GROUP", "MEMBER"),
			ValidArgsFunction: a.completeMembers,
			RunE: func(cmd *cobra.Command, args []string) error {
				return mutate(cmd.Context(), a, fmt.Sprintf("drained member %s of group %s", args[1], args[0]),
					func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.DrainMemberResponse, error) {
						return s.DrainMember(ctx, &hangarv1.DrainMemberRequest{Group: args[0], Member: args[1]})
					})
			},
		},
		&cobra.Command{
			Use:               "undrain GROUP MEMBER",
			Short:             "Return a drained member to rotation (once it is ready)",
			Args:              exactArgs("GROUP", "MEMBER"),
			ValidArgsFunction: a.completeMembers,
			RunE: func(cmd *cobra.Command, args []string) error {
				return mutate(cmd.Context(), a, fmt.Sprintf("undrained member %s of group %s", args[1], args[0]),
					func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.UndrainMemberResponse, error) {
						return s.UndrainMember(ctx, &hangarv1.UndrainMemberRequest{Group: args[0], Member: args[1]})
					})
			},
		},
	)
	return c
}

func (a *app) breakerCommand() *cobra.Command {
	c := parent("breaker", "Act on a group's circuit breaker")
	c.AddCommand(&cobra.Command{
		Use:               "reset GROUP",
		Short:             "Close the group's breaker on every agent",
		Args:              exactArgs("GROUP"),
		ValidArgsFunction: a.completeGroups,
		RunE: func(cmd *cobra.Command, args []string) error {
			return mutate(cmd.Context(), a, "reset the breaker of group "+args[0],
				func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ResetBreakerResponse, error) {
					return s.ResetBreaker(ctx, &hangarv1.ResetBreakerRequest{Group: args[0]})
				})
		},
	})
	return c
}

// mutate runs a request that changes the fleet and prints done, or the
// (empty) response with -o json|yaml.
func mutate[T proto.Message](ctx context.Context, a *app, done string, fn func(context.Context, hangarv1.AdminServiceClient) (T, error)) error {
	c, err := a.dial()
	if err != nil {
		return err
	}
	resp, err := call(ctx, c, fn)
	if err != nil {
		return err
	}
	return printer{a.output, a.stdout}.print(resp, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, done)
		return err
	})
}

// completeMembers completes GROUP, then MEMBER of that group.
func (a *app) completeMembers(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return a.completeGroups(cmd, nil, "")
	case 1:
		g, err := a.groupStatus(cmd.Context(), args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, m := range g.GetMembers() {
			names = append(names, m.GetId())
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
