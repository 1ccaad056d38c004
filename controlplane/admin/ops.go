package admin

import (
	"context"
	"fmt"
	"slices"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// DrainMember takes a member out of its group's rotation until
// UndrainMember. The group and member must exist in the stored fleet config.
func (s *Server) DrainMember(ctx context.Context, req *hangarv1.DrainMemberRequest) (*hangarv1.DrainMemberResponse, error) {
	was, err := s.checkMember(ctx, req.GetGroup(), req.GetMember())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.st.Drain(ctx, req.GetGroup(), req.GetMember()); err != nil {
		return nil, toStatus(err)
	}
	if !was {
		s.record(ctx, store.Event{Kind: "member_drained", Group: req.GetGroup(), Server: req.GetMember(),
			Message: "drained by " + callerName(ctx)})
	}
	return &hangarv1.DrainMemberResponse{}, nil
}

// UndrainMember puts a drained member back; a member not drained stays as
// it is.
func (s *Server) UndrainMember(ctx context.Context, req *hangarv1.UndrainMemberRequest) (*hangarv1.UndrainMemberResponse, error) {
	was, err := s.checkMember(ctx, req.GetGroup(), req.GetMember())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.st.Undrain(ctx, req.GetGroup(), req.GetMember()); err != nil {
		return nil, toStatus(err)
	}
	if was {
		s.record(ctx, store.Event{Kind: "member_undrained", Group: req.GetGroup(), Server: req.GetMember(),
			Message: "undrained by " + callerName(ctx)})
	}
	return &hangarv1.UndrainMemberResponse{}, nil
}

// checkMember finds the member in the stored fleet config and says whether
// it is drained now.
func (s *Server) checkMember(ctx context.Context, group, member string) (drained bool, err error) {
	g, err := s.storedGroup(ctx, group)
	if err != nil {
		return false, err
	}
	if err := lookupMember(g, member); err != nil {
		return false, err
	}
	d, err := s.st.Drained(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(d[group], member), nil
}

// ResetBreaker closes the group's breaker on every agent: the next
// snapshot carries a grown breaker_reset count.
func (s *Server) ResetBreaker(ctx context.Context, req *hangarv1.ResetBreakerRequest) (*hangarv1.ResetBreakerResponse, error) {
	if _, err := s.storedGroup(ctx, req.GetGroup()); err != nil {
		return nil, toStatus(err)
	}
	n, err := s.st.ResetBreaker(ctx, req.GetGroup())
	if err != nil {
		return nil, toStatus(err)
	}
	s.record(ctx, store.Event{Kind: "breaker_reset", Group: req.GetGroup(),
		Message: fmt.Sprintf("reset #%d by %s", n, callerName(ctx))})
	return &hangarv1.ResetBreakerResponse{}, nil
}

func (s *Server) storedGroup(ctx context.Context, id string) (*fleetfile.Group, error) {
	_, f, err := s.fleet(ctx)
	if err != nil {
		return nil, err
	}
	return lookupGroup(f, id)
}
