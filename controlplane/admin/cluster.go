package admin

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// ListAgents lists the connected agents, by id, with the snapshot version
// each ACKed and the members each probes.
func (s *Server) ListAgents(ctx context.Context, _ *hangarv1.ListAgentsRequest) (*hangarv1.ListAgentsResponse, error) {
	agents, err := s.agents(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	rec, version, err := s.snapshot(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	yaml, _, err := s.st.Config(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	sha := fleetfile.Hash(yaml)
	resp := &hangarv1.ListAgentsResponse{SnapshotVersion: version}
	for _, ar := range agents {
		h := ar.GetHello()
		source := h.GetConfigSource()
		if source == "" {
			source = server.ConfigSourceControlPlane
		}
		resp.Agents = append(resp.Agents, &hangarv1.AgentStatus{
			Id: h.GetAgentId(), Host: h.GetHost(), Version: h.GetVersion(), Labels: h.GetLabels(),
			Replica: ar.GetReplica(), AckedVersion: ar.GetAckedVersion(),
			Connected: ar.GetConnected(), LastReport: ar.GetReceived(),
			Probes:       rec.GetAssignments()[h.GetAgentId()].GetProbe(),
			ConfigSource: source, Sync: server.Sync(ar, sha, version),
			NackedVersion: ar.GetNackedVersion(), NackError: ar.GetNackError(),
		})
	}
	return resp, nil
}

func (s *Server) snapshot(ctx context.Context) (*hangarv1.SnapshotRecord, uint64, error) {
	data, rev, err := s.st.Snapshot(ctx)
	if err != nil {
		return nil, 0, err
	}
	rec := &hangarv1.SnapshotRecord{}
	if err := proto.Unmarshal(data, rec); err != nil {
		return nil, 0, err
	}
	return rec, uint64(rev), nil
}

// GetClusterStatus describes the control plane: its replicas and leader,
// the etcd endpoints' health, the snapshot version and the agents. When
// etcd cannot be read, the error lists each endpoint's problem.
func (s *Server) GetClusterStatus(ctx context.Context, _ *hangarv1.GetClusterStatusRequest) (*hangarv1.ClusterStatus, error) {
	st, err := s.st.Status(ctx)
	if err != nil {
		var probs []string
		for _, e := range st.Endpoints {
			if !e.Healthy {
				probs = append(probs, e.Endpoint+": "+e.Err)
			}
		}
		if len(probs) > 0 {
			err = fmt.Errorf("%w (etcd endpoints: %s)", err, strings.Join(probs, "; "))
		}
		return nil, toStatus(err)
	}
	resp := &hangarv1.ClusterStatus{Leader: st.Leader}
	for _, e := range st.Endpoints {
		resp.Etcd = append(resp.Etcd, &hangarv1.EtcdEndpoint{
			Endpoint: e.Endpoint, Healthy: e.Healthy, Error: e.Err, Version: e.Version,
			DbSizeBytes: e.DBSize, Leader: e.IsLeader,
		})
	}
	replicas, err := s.st.Replicas(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, name := range sortedKeys(replicas) {
		resp.Replicas = append(resp.Replicas, &hangarv1.Replica{Name: name, Address: replicas[name], Leader: name == st.Leader})
	}
	_, version, err := s.snapshot(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp.SnapshotVersion = version
	agents, err := s.agents(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp.Agents = int32(len(agents))
	return resp, nil
}
