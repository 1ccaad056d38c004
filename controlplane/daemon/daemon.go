// Package daemon is the hangar-controlplane command: it connects to etcd
// (an embedded single node by default, or an external cluster), stores the
// fleet file, and runs a replica (agent streams, report publishing, leader
// election and decisions) with its gRPC and metrics servers.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/hangarmesh/hangar/internal/endpoints"
	"github.com/hangarmesh/hangar/internal/settingsfile"
	"github.com/hangarmesh/hangar/internal/version"
)

// Run runs the hangar-controlplane command line with args until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "hangar-controlplane",
		Short:         "Hangar's control plane: aggregates agents' health and pushes routing snapshots",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCommand(stderr), etcdCommand(stderr))
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func serveCommand(stderr io.Writer) *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one control-plane replica",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := v.GetString("settings")
			if path != "" {
				if err := settingsfile.Read(v, path); err != nil {
					return err
				}
			}
			s, err := settingsFrom(v)
			if err != nil {
				return err
			}
			log, level, err := newLogger(s.LogLevel, s.JSONLogs, stderr)
			if err != nil {
				return err
			}
			onHUP := func() {}
			if path != "" {
				// Reloadable: log-level; every other setting needs a restart (logged).
				r := settingsfile.NewReloader(v, path, map[string]func(string) error{
					"log-level": func(name string) error { return setLevel(level, name) },
				}, func() error { _, err := settingsFrom(v); return err }, log)
				onHUP = func() { r.Reload() }
			}
			return serve(cmd.Context(), s, log, onHUP)
		},
	}
	f := cmd.Flags()
	f.String("settings", "", "settings file (YAML/TOML/JSON) with any of these flags as keys")
	f.String("listen", "127.0.0.1:7400", "gRPC address for agents and hangarctl")
	f.String("metrics-listen", "127.0.0.1:7401", "HTTP address for /metrics, /healthz and /readyz")
	f.String("advertise", "", "address others use to reach --listen (default: the address --listen bound)")
	f.String("name", "", "unique replica name (default: HOSTNAME-PORT)")
	f.String("data-dir", "hangar-controlplane.etcd", "embedded etcd data directory (single node; ignored with --etcd-endpoints)")
	f.StringSlice("etcd-endpoints", nil, "external etcd cluster endpoints (comma-separated URLs)")
	f.String("etcd-ca-file", "", "CA bundle to verify etcd servers")
	f.String("etcd-cert-file", "", "client certificate for etcd")
	f.String("etcd-key-file", "", "client key for etcd")
	f.String("etcd-prefix", "/hangar/", "key prefix in etcd")
	f.String("etcd-username", "", "etcd user for an external cluster with authentication")
	f.String("etcd-password-file", "", "file holding the password of --etcd-username")
	f.String("fleet-config", "", "fleet file to validate and store in etcd (MCP Hangar's config.yaml format)")
	f.String("tls-cert-file", "", "server certificate for gRPC")
	f.String("tls-key-file", "", "server key for gRPC")
	f.String("tls-client-ca-file", "", "require agent client certificates signed by this CA (mTLS)")
	f.String("auth-token-file", "", "require a bearer token from agents and hangarctl; this one has the admin role")
	f.String("read-only-token-file", "", "also accept this bearer token, with the read-only role (admin API reads; not agent streams)")
	f.String("agent-tokens-file", "", `agents' bearer tokens, one "AGENT_ID TOKEN" per line: each may only connect as its agent id`)
	f.Bool("insecure", false, "allow plaintext gRPC on a non-loopback address")
	f.Duration("election-ttl", 5*time.Second, "etcd session TTL: how fast a dead leader is replaced")
	f.String("log-level", "info", "debug, info, warn or error")
	f.Bool("json-logs", false, "log JSON lines")
	must(v.BindPFlags(f))
	v.SetEnvPrefix("HANGAR")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	return cmd
}

// settingsFrom builds and checks the settings from flags, HANGAR_*
// variables and the settings file.
func settingsFrom(v *viper.Viper) (Settings, error) {
	s := Settings{
		Listen: v.GetString("listen"), MetricsListen: v.GetString("metrics-listen"), Advertise: v.GetString("advertise"),
		Name: v.GetString("name"), DataDir: v.GetString("data-dir"), EtcdEndpoints: endpoints.Split(v.GetStringSlice("etcd-endpoints")),
		EtcdCAFile: v.GetString("etcd-ca-file"), EtcdCertFile: v.GetString("etcd-cert-file"), EtcdKeyFile: v.GetString("etcd-key-file"),
		EtcdPrefix: v.GetString("etcd-prefix"), FleetConfig: v.GetString("fleet-config"),
		EtcdUsername: v.GetString("etcd-username"), EtcdPasswordFile: v.GetString("etcd-password-file"),
		TLSCertFile: v.GetString("tls-cert-file"), TLSKeyFile: v.GetString("tls-key-file"), TLSClientCAFile: v.GetString("tls-client-ca-file"),
		AuthTokenFile: v.GetString("auth-token-file"), ReadOnlyTokenFile: v.GetString("read-only-token-file"), AgentTokensFile: v.GetString("agent-tokens-file"), Insecure: v.GetBool("insecure"),
		ElectionTTL: v.GetDuration("election-ttl"), LogLevel: v.GetString("log-level"), JSONLogs: v.GetBool("json-logs"),
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, setLevel(new(slog.LevelVar), s.LogLevel)
}

// newLogger builds the process logger; its level can change while it runs
// (--settings reloads).
func newLogger(level string, json bool, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := setLevel(lv, level); err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), lv, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv, nil
}

// setLevel sets lv from a --log-level value.
func setLevel(lv *slog.LevelVar, level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	lv.Set(l)
	return nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ExitCode maps Run's error to a process exit code.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	return 1
}
