package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
)

// etcdCommand runs one etcd member: a standalone node that replicas share
// (tests and demos), or, with --initial-cluster, a member of a cluster
// (production HA), with TLS on its client and peer URLs.
func etcdCommand(stderr io.Writer) *cobra.Command {
	var cfg etcdnode.Config
	var client, peer string
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run an etcd member for replicas to share: a single node, or one member of a cluster (--initial-cluster)",
		Example: "  hangar-controlplane etcd --name e1 --data-dir /var/lib/hangar/e1 \\\n" +
			"    --listen-client https://10.0.0.1:2379 --listen-peer https://10.0.0.1:2380 \\\n" +
			"    --initial-cluster e1=https://10.0.0.1:2380,e2=https://10.0.0.2:2380,e3=https://10.0.0.3:2380 \\\n" +
			"    --cert-file etcd.pem --key-file etcd-key.pem --trusted-ca-file ca.pem --client-cert-auth \\\n" +
			"    --peer-cert-file peer.pem --peer-key-file peer-key.pem --peer-trusted-ca-file ca.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, _, _ := newLogger("info", false, stderr)
			cfg.ClientURL, cfg.PeerURL, cfg.Logger = client, peer, log
			if cfg.InitialCluster != "" && cfg.Name == "" {
				return fmt.Errorf("--initial-cluster needs --name: this member's name in the list")
			}
			if cfg.InitialCluster != "" && !strings.Contains(cfg.InitialCluster, cfg.Name+"=") {
				return fmt.Errorf("--initial-cluster %q does not list --name %q", cfg.InitialCluster, cfg.Name)
			}
			node, err := etcdnode.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "etcd ready endpoints=%s\n", strings.Join(node.Endpoints(), ","))
			<-cmd.Context().Done()
			return node.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "data-dir", "hangar-etcd", "data directory")
	f.StringVar(&cfg.Name, "name", "", "member name (default "+etcdnode.DefaultName+"; required with --initial-cluster)")
	f.StringVar(&client, "listen-client", "http://127.0.0.1:2379", "client URL, also advertised (https with --cert-file; port 0 picks a free port)")
	f.StringVar(&peer, "listen-peer", "http://127.0.0.1:0", "peer URL, also advertised (https with --peer-cert-file)")
	f.StringVar(&cfg.InitialCluster, "initial-cluster", "", "the cluster's members, NAME=PEER_URL,… (default: this member alone)")
	f.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "new", "new, or existing to join a running cluster")
	f.StringVar(&cfg.ClusterToken, "initial-cluster-token", "hangar", "cluster token, the same on every member")
	f.StringVar(&cfg.ClientTLS.CertFile, "cert-file", "", "client URL TLS certificate")
	f.StringVar(&cfg.ClientTLS.KeyFile, "key-file", "", "client URL TLS key")
	f.StringVar(&cfg.ClientTLS.TrustedCAFile, "trusted-ca-file", "", "CA that signs clients' certificates")
	f.BoolVar(&cfg.ClientTLS.ClientCertAuth, "client-cert-auth", false, "require client certificates signed by --trusted-ca-file")
	f.StringVar(&cfg.PeerTLS.CertFile, "peer-cert-file", "", "peer URL TLS certificate")
	f.StringVar(&cfg.PeerTLS.KeyFile, "peer-key-file", "", "peer URL TLS key")
	f.StringVar(&cfg.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "CA that signs the other members' peer certificates (required peer authentication)")
	f.UintVar(&cfg.MaxRequestBytes, "max-request-bytes", etcdnode.DefaultMaxRequestBytes, "largest request etcd accepts")
	return cmd
}
