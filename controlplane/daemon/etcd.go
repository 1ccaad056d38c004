package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangarmesh/hangar/controlplane/etcdnode"
)

// etcdCommand runs a standalone single-node etcd: the store several
// replicas share in tests and demos (production HA uses an etcd cluster).
func etcdCommand(stderr io.Writer) *cobra.Command {
	var dir, client, peer string
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run a standalone single-node etcd for replicas to share (tests and demos)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, _ := newLogger("info", false, stderr)
			node, err := etcdnode.Start(cmd.Context(), etcdnode.Config{Dir: dir, ClientURL: client, PeerURL: peer, Logger: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "etcd ready endpoints=%s\n", strings.Join(node.Endpoints(), ","))
			<-cmd.Context().Done()
			return node.Close()
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "hangar-etcd", "data directory")
	cmd.Flags().StringVar(&client, "listen-client", "http://127.0.0.1:2379", "client URL (port 0 picks a free port)")
	cmd.Flags().StringVar(&peer, "listen-peer", "http://127.0.0.1:0", "peer URL")
	return cmd
}
