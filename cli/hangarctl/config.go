package hangarctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func (a *app) configCommand() *cobra.Command {
	c := parent("config", "Read or replace the fleet config stored by the control plane")
	c.AddCommand(a.configApplyCommand(), a.configGetCommand(), a.configHistoryCommand(), a.configRollbackCommand())
	return c
}

func (a *app) configApplyCommand() *cobra.Command {
	var file string
	var dryRun, force bool
	c := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Validate a fleet file and store it; agents get the new snapshot within a second",
		Long: "Validate a fleet file with the agents' parser and store it. The control plane prints a\n" +
			"unified diff from the stored config; --dry-run shows it without storing anything and,\n" +
			"exits 3 when the valid file differs from the stored config, 0 when it matches.\n" +
			"An invalid file is rejected with its file:line and exit code 1; exit 2 means no control plane answered.",
		Example: "  hangarctl config apply -f fleet.yaml --dry-run\n" +
			"  render-fleet | hangarctl config apply -f -",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, name, err := a.readFile(file)
			if err != nil {
				return err
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			req := &hangarv1.ApplyConfigRequest{Config: data, Name: name, DryRun: dryRun, Force: force}
			resp, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ApplyConfigResponse, error) {
				return s.ApplyConfig(ctx, req)
			})
			if err != nil && !dryRun && cmd.Context().Err() == nil {
				resp, err = appliedAnyway(cmd.Context(), c, data, err)
			}
			if err != nil {
				return err
			}
			if err := (printer{a.output, a.stdout}).print(resp, func(w io.Writer) error { return applyTable(w, resp, dryRun) }); err != nil {
				return err
			}
			if dryRun && resp.GetChanged() {
				return quietExit{ExitDiff} // the diff is the answer; nothing more to say
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "the fleet file (YAML); - reads standard input")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the diff without storing anything")
	c.Flags().BoolVar(&force, "force", false, "apply even if it removes groups or members that carried calls in the last 10 minutes")
	_ = c.MarkFlagRequired("filename")
	_ = c.MarkFlagFilename("filename", "yaml", "yml")
	return c
}

// appliedAnyway checks, after an apply whose answer was lost (a replica
// stored the file but its answer never arrived, and the next replica did
// not answer either), whether the stored config is the file: then the
// apply succeeded and is reported so, not as a failure. Otherwise it
// returns applyErr.
func appliedAnyway(ctx context.Context, c *client, data []byte, applyErr error) (*hangarv1.ApplyConfigResponse, error) {
	var u *unreachableError
	var e *etcdDownError
	if !errors.As(applyErr, &u) && !errors.As(applyErr, &e) {
		return nil, applyErr
	}
	got, err := call(ctx, c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.GetConfigResponse, error) {
		return s.GetConfig(ctx, &hangarv1.GetConfigRequest{})
	})
	if err != nil || !bytes.Equal(got.GetConfig(), data) {
		return nil, applyErr
	}
	return &hangarv1.ApplyConfigResponse{Changed: true, Revision: got.GetRevision()}, nil
}

// readFile reads the fleet file named by -f, or stdin for "-", and returns
// the name the control plane uses in its messages.
func (a *app) readFile(file string) ([]byte, string, error) {
	if file == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read standard input: %w", err)
		}
		return data, "<stdin>", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("-f %s: no such file", file)
		}
		return nil, "", fmt.Errorf("-f: %w", err)
	}
	return data, file, nil
}

func applyTable(w io.Writer, resp *hangarv1.ApplyConfigResponse, dryRun bool) error {
	if d := resp.GetDiff(); d != "" {
		fmt.Fprint(w, d)
		if d[len(d)-1] != '\n' {
			fmt.Fprintln(w)
		}
	}
	if in := resp.GetInUse(); len(in) > 0 {
		if dryRun {
			fmt.Fprintln(w, "dry run: this would be refused without --force, as it removes what carried calls in the last 10 minutes:")
		} else {
			fmt.Fprintln(w, "applied with --force, removing what carried calls in the last 10 minutes:")
		}
		for _, l := range in {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	switch {
	case dryRun && resp.GetChanged():
		fmt.Fprintf(w, "dry run: the config would change (stored revision %d); nothing applied\n", resp.GetRevision())
	case dryRun:
		fmt.Fprintf(w, "dry run: no changes (revision %d)\n", resp.GetRevision())
	case resp.GetChanged():
		fmt.Fprintf(w, "applied: revision %d\n", resp.GetRevision())
	default:
		fmt.Fprintf(w, "unchanged: revision %d\n", resp.GetRevision())
	}
	return nil
}

func (a *app) configGetCommand() *cobra.Command {
	var revision int64
	c := &cobra.Command{
		Use:   "get",
		Short: "Print the stored fleet file (as YAML text; -o json|yaml prints the response with its revision)",
		Example: "  hangarctl config get > fleet.yaml\n" +
			"  hangarctl config get -o json | jq .revision",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.GetConfigResponse, error) {
				return s.GetConfig(ctx, &hangarv1.GetConfigRequest{Revision: revision})
			})
			if err != nil {
				return err
			}
			if a.output != formatTable {
				return printer{a.output, a.stdout}.print(resp, nil)
			}
			cfg := resp.GetConfig()
			if len(cfg) > 0 && cfg[len(cfg)-1] != '\n' {
				cfg = append(cfg, '\n')
			}
			_, err = a.stdout.Write(cfg)
			return err
		},
	}
	c.Flags().Int64Var(&revision, "revision", 0, "print an earlier revision (see config history) instead of the current one")
	return c
}

func (a *app) configHistoryCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "history",
		Short:   "List the stored fleet files, newest first (the control plane keeps the last 20)",
		Example: "  hangarctl config history\n  hangarctl config get --revision 42 > old.yaml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ListConfigHistoryResponse, error) {
				return s.ListConfigHistory(ctx, &hangarv1.ListConfigHistoryRequest{})
			})
			if err != nil {
				return err
			}
			return printer{a.output, a.stdout}.print(resp, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "REVISION\tTIME\tBY\tNAME\tBYTES\tSHA256")
				for _, r := range resp.GetRevisions() {
					cur := ""
					if r.GetRevision() == resp.GetCurrent() {
						cur = " (current)"
					}
					fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%d\t%.12s\n", r.GetRevision(), cur, r.GetTime().AsTime().UTC().Format(time.RFC3339),
						r.GetBy(), r.GetName(), r.GetSizeBytes(), r.GetSha256())
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) configRollbackCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rollback REVISION",
		Short: "Store again the fleet file of an earlier revision (see config history), as config apply would",
		Example: "  hangarctl config history\n" +
			"  hangarctl config rollback 42",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || rev <= 0 {
				return fmt.Errorf("REVISION %q: want a revision number from hangarctl config history", args[0])
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			old, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.GetConfigResponse, error) {
				return s.GetConfig(ctx, &hangarv1.GetConfigRequest{Revision: rev})
			})
			if err != nil {
				return err
			}
			req := &hangarv1.ApplyConfigRequest{Config: old.GetConfig(), Name: fmt.Sprintf("revision %d", rev), Force: force}
			resp, err := call(cmd.Context(), c, func(ctx context.Context, s hangarv1.AdminServiceClient) (*hangarv1.ApplyConfigResponse, error) {
				return s.ApplyConfig(ctx, req)
			})
			if err != nil {
				return err
			}
			return printer{a.output, a.stdout}.print(resp, func(w io.Writer) error { return applyTable(w, resp, false) })
		},
	}
	c.Flags().BoolVar(&force, "force", false, "roll back even if it removes groups or members that carried calls in the last 10 minutes")
	return c
}
