package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// statusTimeout bounds each endpoint's Status call, so one dead endpoint
// does not hide the others.
const statusTimeout = 2 * time.Second

// ClusterStatus is the health of the etcd cluster behind the store.
type ClusterStatus struct {
	Endpoints []EndpointStatus
	// Leader is the control-plane leader's replica name, "" when none.
	Leader string
	// DBSize is the largest database size (bytes) an endpoint reported.
	DBSize int64
}

// EndpointStatus is one etcd endpoint as its Status RPC reports it.
type EndpointStatus struct {
	Endpoint string
	// Healthy means the endpoint answered, has a raft leader and reports no
	// errors (such as a NOSPACE alarm).
	Healthy bool
	// Err says why the endpoint is not healthy; "" when it is.
	Err string
	// The rest is zero when the endpoint did not answer.
	Version     string
	MemberID    uint64
	IsLeader    bool // this member is etcd's raft leader
	RaftTerm    uint64
	DBSize      int64
	DBSizeInUse int64
}

// Status asks every endpoint of the client for its status, concurrently,
// and reads the control-plane leader. An endpoint that fails is reported in
// its EndpointStatus; the error is only for the leader read, and the
// endpoints are filled in even then.
func (s *Store) Status(ctx context.Context) (ClusterStatus, error) {
	eps := s.cli.Endpoints()
	st := ClusterStatus{Endpoints: make([]EndpointStatus, len(eps))}
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { st.Endpoints[i] = s.endpointStatus(ctx, ep) })
	}
	wg.Wait()
	for _, e := range st.Endpoints {
		st.DBSize = max(st.DBSize, e.DBSize)
	}
	leader, err := s.Leader(ctx)
	if err != nil {
		return st, fmt.Errorf("cluster status: %w", err)
	}
	st.Leader = leader
	return st, nil
}

func (s *Store) endpointStatus(ctx context.Context, ep string) EndpointStatus {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	r, err := s.cli.Status(ctx, ep)
	if err != nil {
		return EndpointStatus{Endpoint: ep, Err: err.Error()}
	}
	es := EndpointStatus{
		Endpoint:    ep,
		Version:     r.Version,
		MemberID:    r.Header.MemberId,
		IsLeader:    r.Leader != 0 && r.Leader == r.Header.MemberId,
		RaftTerm:    r.RaftTerm,
		DBSize:      r.DbSize,
		DBSizeInUse: r.DbSizeInUse,
	}
	switch {
	case len(r.Errors) > 0:
		es.Err = fmt.Sprint(r.Errors)
	case r.Leader == 0:
		es.Err = "no raft leader"
	default:
		es.Healthy = true
	}
	return es
}
