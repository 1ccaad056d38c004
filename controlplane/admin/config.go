package admin

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// defaultConfigName names an applied file in messages when the request
// does not.
const defaultConfigName = "config.yaml"

// ApplyConfig validates a fleet file with the agents' parser and, unless
// dry_run, stores it. A file with problems is refused with InvalidArgument
// listing each as file:line: key: message; the stored config is unchanged.
func (s *Server) ApplyConfig(ctx context.Context, req *hangarv1.ApplyConfigRequest) (*hangarv1.ApplyConfigResponse, error) {
	name := req.GetName()
	if name == "" {
		name = defaultConfigName
	}
	next, err := fleetfile.ParseAs(fleetfile.ControlPlane, name, req.GetConfig())
	if err != nil {
		return nil, toStatus(err)
	}
	old, rev, err := s.st.Config(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	inUse, err := s.inUse(ctx, old, next)
	if err != nil {
		return nil, toStatus(err)
	}
	from := "etcd:config"
	if rev != 0 {
		from = fmt.Sprintf("etcd:config (revision %d)", rev)
	}
	resp := &hangarv1.ApplyConfigResponse{
		Diff:     unifiedDiff(from, name, old, req.GetConfig()),
		Changed:  !bytes.Equal(old, req.GetConfig()),
		Revision: rev,
		InUse:    inUse,
	}
	if req.GetDryRun() {
		return resp, nil
	}
	if len(inUse) > 0 && !req.GetForce() {
		return nil, status.Errorf(codes.FailedPrecondition,
			"hangar: %s removes what carried calls in the last %s, and nothing was applied:\n  %s\n"+
				"drain it first (hangarctl member drain) and wait until its calls stop, or apply with --force",
			name, InUseWindow, strings.Join(inUse, "\n  "))
	}
	resp.Revision, resp.Changed, err = s.st.PutConfigBy(ctx, req.GetConfig(), store.ConfigMeta{By: callerName(ctx), Name: name})
	if err != nil {
		return nil, toStatus(err)
	}
	if resp.Changed {
		msg := fmt.Sprintf("%s stored as revision %d by %s", name, resp.Revision, callerName(ctx))
		if len(inUse) > 0 {
			msg += fmt.Sprintf(" with --force (%s)", strings.Join(inUse, "; "))
		}
		s.record(ctx, store.Event{Kind: "config_applied", Message: msg})
	} else {
		resp.Diff = "" // someone stored the same bytes in between
	}
	return resp, nil
}

// inUse parses the stored fleet and lists what next removes that carried
// calls recently (removedInUse).
func (s *Server) inUse(ctx context.Context, old []byte, next *fleetfile.Fleet) ([]string, error) {
	if len(old) == 0 {
		return nil, nil
	}
	of, err := fleetfile.ParseAs(fleetfile.ControlPlane, "etcd:config", old)
	if err != nil {
		return nil, nil // a stored config that no longer parses protects nothing
	}
	agents, err := s.agents(ctx)
	if err != nil {
		return nil, err
	}
	return removedInUse(of, next, agents, s.clk.Now()), nil
}

// GetConfig returns the stored fleet file, or with a revision one from the
// config history.
func (s *Server) GetConfig(ctx context.Context, req *hangarv1.GetConfigRequest) (*hangarv1.GetConfigResponse, error) {
	if want := req.GetRevision(); want != 0 {
		hist, err := s.st.ConfigHistory(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		revs := make([]string, 0, len(hist))
		for _, e := range hist {
			if e.Rev == want {
				return &hangarv1.GetConfigResponse{Config: e.Data, Revision: e.Rev}, nil
			}
			revs = append(revs, fmt.Sprint(e.Rev))
		}
		return nil, toStatus(notFoundf("no config revision %d in the history (kept: %s; see hangarctl config history)", want, list(revs)))
	}
	data, rev, err := s.st.Config(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &hangarv1.GetConfigResponse{Config: data, Revision: rev}, nil
}

// record appends an operator's action to the event log. The action is done
// by then, so a failure is logged, not returned.
func (s *Server) record(ctx context.Context, e store.Event) {
	s.log.Info(e.Kind, "group", e.Group, "member", e.Server, "message", e.Message)
	if _, err := s.st.AppendEvent(ctx, e); err != nil {
		s.log.Warn("event_append_failed", "kind", e.Kind, "error", err.Error())
	}
}

// ListConfigHistory lists the kept fleet files, newest first.
func (s *Server) ListConfigHistory(ctx context.Context, req *hangarv1.ListConfigHistoryRequest) (*hangarv1.ListConfigHistoryResponse, error) {
	hist, err := s.st.ConfigHistory(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	_, cur, err := s.st.Config(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &hangarv1.ListConfigHistoryResponse{Current: cur}
	for i, e := range hist {
		if n := int(req.GetLimit()); n > 0 && i >= n {
			break
		}
		resp.Revisions = append(resp.Revisions, &hangarv1.ConfigRevision{Revision: e.Rev, Time: timestamppb.New(e.Time),
			By: e.By, Name: e.Name, SizeBytes: int64(len(e.Data)), Sha256: e.SHA})
	}
	return resp, nil
}
