package hangarctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangarmesh/hangar/internal/endpoints"
)

// Exit codes returned by Run.
const (
	ExitOK          = 0 // the command did what was asked
	ExitUserError   = 1 // bad flags or arguments, or the control plane refused the request
	ExitUnreachable = 2 // no control-plane endpoint answered
	// ExitDiff is what `config apply --dry-run` returns when the file is
	// valid and differs from the stored config. It is not 1 (as kubectl
	// diff uses) so that a script can tell "would change" from "invalid".
	ExitDiff = 3
)

// quietExit ends a command with an exit code and no error message.
type quietExit struct{ code int }

func (q quietExit) Error() string { return fmt.Sprintf("exit %d", q.code) }

// DefaultControlPlane is the endpoint used when neither --control-plane nor
// HANGAR_CONTROL_PLANE names one.
const DefaultControlPlane = "127.0.0.1:7400"

// EnvControlPlane names the environment variable read when --control-plane
// is not given.
const EnvControlPlane = "HANGAR_CONTROL_PLANE"

// Run runs hangarctl with args (without the program name) and returns the
// process exit code. Errors are printed to stderr prefixed "hangarctl: ".
// Cancelling ctx (Ctrl-C) ends a --watch or --follow cleanly with ExitOK.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.client != nil {
		a.client.Close()
	}
	if err == nil {
		return ExitOK
	}
	var q quietExit
	if errors.As(err, &q) {
		return q.code
	}
	fmt.Fprintln(stderr, "hangarctl: "+message(err))
	return exitCode(err)
}

// app holds one invocation's flags, streams and control-plane client.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	controlPlane []string
	caFile       string
	certFile     string
	keyFile      string
	tokenFile    string
	insecure     bool
	output       string
	timeout      time.Duration

	client *client // dialled on first use
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hangarctl",
		Short: "hangarctl inspects and steers a Hangar fleet through its control plane",
		Long: "hangarctl inspects and steers a Hangar fleet through its control plane.\n\n" +
			"Exit codes: 0 success, 1 user error (flags, unknown name, invalid config, permission denied),\n" +
			"2 control plane unreachable.",
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           readVersion().String(),
		Args:              noArgs,
		RunE:              func(c *cobra.Command, _ []string) error { return c.Help() },
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.validateFlags() },
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	f := root.PersistentFlags()
	f.StringArrayVar(&a.controlPlane, "control-plane", nil,
		"control-plane endpoints HOST:PORT, comma-separated or repeated, tried in order (env "+EnvControlPlane+", default "+DefaultControlPlane+")")
	f.StringVar(&a.caFile, "ca-file", "", "verify the control plane's TLS certificate with this CA bundle (turns TLS on)")
	f.StringVar(&a.certFile, "cert-file", "", "client certificate for mutual TLS (turns TLS on; with --key-file)")
	f.StringVar(&a.keyFile, "key-file", "", "private key of --cert-file")
	f.StringVar(&a.tokenFile, "token-file", "", "send the bearer token in this file with every request")
	f.BoolVar(&a.insecure, "insecure", false, "allow plaintext to a non-loopback control plane (plaintext to loopback is always allowed)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&a.timeout, "timeout", 5*time.Second, "how long to wait for each endpoint to answer a request")
	_ = root.RegisterFlagCompletionFunc("output",
		cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{c, err} })

	root.AddCommand(
		a.groupCommand(), a.serverCommand(), a.agentCommand(), a.configCommand(),
		a.eventsCommand(), a.memberCommand(), a.breakerCommand(), a.clusterCommand(),
		a.versionCommand(),
	)
	return root
}

// validateFlags checks the global flags before any command runs.
func (a *app) validateFlags() error {
	switch a.output {
	case formatTable, formatJSON, formatYAML:
	default:
		return fmt.Errorf("--output %q: want table, json or yaml", a.output)
	}
	if a.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration such as 5s", a.timeout)
	}
	return nil
}

// dial returns the control-plane client, creating it on first use.
// Connections are made lazily, so commands that never call the control
// plane (version, completion) never dial.
func (a *app) dial() (*client, error) {
	if a.client != nil {
		return a.client, nil
	}
	eps := endpoints.Split(a.controlPlane)
	source := "--control-plane"
	if len(eps) == 0 {
		eps, source = endpoints.Split([]string{a.getenv(EnvControlPlane)}), EnvControlPlane
	}
	if len(eps) == 0 {
		eps = []string{DefaultControlPlane}
	}
	c, err := newClient(dialConfig{
		Endpoints: eps, Source: source,
		CAFile: a.caFile, CertFile: a.certFile, KeyFile: a.keyFile, TokenFile: a.tokenFile,
		Insecure: a.insecure, Timeout: a.timeout,
	})
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

// usageError is a mistake on the command line: a flag or the arguments.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string {
	return fmt.Sprintf("%v\nRun '%s --help' for usage.", e.err, e.cmd.CommandPath())
}

func (e usageError) Unwrap() error { return e.err }

// noArgs rejects arguments, naming the subcommands when there are any.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if c.HasSubCommands() {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		c.SuggestionsMinimumDistance = 2
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return usageError{c, errors.New(msg)}
	}
	return usageError{c, fmt.Errorf("%q takes no arguments, got %q", c.CommandPath(), args)}
}

// parent is a command that only groups subcommands: run alone it prints
// its help; with an argument it names the unknown subcommand.
func parent(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: noArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
}

// exactArgs requires one argument per name, as in "GROUP MEMBER".
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		want := fmt.Sprint(names)
		want = want[1 : len(want)-1]
		return usageError{c, fmt.Errorf("%q wants %s, got %d argument(s)", c.CommandPath(), want, len(args))}
	}
}

// errInterrupted reports a request cut short by Ctrl-C.
var errInterrupted = errors.New("interrupted")
