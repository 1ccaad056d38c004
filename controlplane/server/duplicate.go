package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// remoteCheckTimeout bounds the etcd read of the other replicas' agents
// at admission: without etcd the agent is admitted (a replica keeps serving
// agents while etcd is away), and the local check still holds.
const remoteCheckTimeout = 2 * time.Second

// remoteDuplicate refuses hello if another replica has an agent with the
// same id from another process (another Hello.instance) connected, as its
// leased reports in etcd say. The same process connected elsewhere is a
// reconnect: the old replica drops it when that stream ends, and its
// report goes with the old replica's lease at the latest. An agent too old
// to send an instance is never refused here. Two processes connecting to
// two replicas at the same instant can both pass, until a report is
// published: the check is for the agent that is already settled.
func (r *Replica) remoteDuplicate(ctx context.Context, hello *hangarv1.Hello) error {
	if hello.GetInstance() == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, remoteCheckTimeout)
	defer cancel()
	remote, err := r.store.Reports(ctx)
	if err != nil {
		r.log.Warn("agent_duplicate_check_skipped", "agent_id", hello.GetAgentId(), "error", err.Error())
		return nil
	}
	for key, data := range remote {
		if r.ownShard(key) {
			continue
		}
		var rr hangarv1.ReplicaReport
		if err := proto.Unmarshal(data, &rr); err != nil {
			continue
		}
		for _, a := range rr.GetAgents() {
			other := a.GetHello()
			if other.GetAgentId() != hello.GetAgentId() || other.GetInstance() == "" ||
				other.GetInstance() == hello.GetInstance() {
				continue
			}
			return status.Errorf(codes.AlreadyExists,
				"hangar: agent id %q is already connected to replica %q from %s (host %q, connected since %s): "+
					"two agents cannot share an id; give each its own --agent-id, or leave --agent-id unset so each gets a unique one",
				hello.GetAgentId(), a.GetReplica(), a.GetPeer(), other.GetHost(),
				a.GetConnected().AsTime().UTC().Format(time.RFC3339))
		}
	}
	return nil
}
