package admin

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/controlplane/store"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// defaultEventLimit is how many past events WatchEvents sends when the
// request says 0.
const defaultEventLimit = 100

// WatchEvents sends the newest limit events with seq > after_seq that match
// the filters, oldest first (as tail -n); then, if follow, every new
// matching event until the client goes away. Following resumes after the
// newest event read, matching or not, so nothing is sent twice or skipped.
func (s *Server) WatchEvents(req *hangarv1.WatchEventsRequest, stream grpc.ServerStreamingServer[hangarv1.Event]) error {
	limit := int(req.GetLimit())
	switch {
	case limit < 0:
		return status.Errorf(codes.InvalidArgument, "limit %d: want 0 (the default, %d) or more", limit, defaultEventLimit)
	case limit == 0:
		limit = defaultEventLimit
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	past, err := s.st.Events(ctx, req.GetAfterSeq(), 0)
	if err != nil {
		return toStatus(err)
	}
	last := req.GetAfterSeq()
	var match []store.Event
	for _, e := range past {
		last = max(last, e.Seq)
		if matches(req, e) {
			match = append(match, e)
		}
	}
	for _, e := range match[max(0, len(match)-limit):] {
		if err := stream.Send(eventProto(e)); err != nil {
			return err
		}
	}
	if !req.GetFollow() {
		return nil
	}
	for e := range s.st.WatchEvents(ctx, last) {
		if !matches(req, e) {
			continue
		}
		if err := stream.Send(eventProto(e)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // the client went away
	}
	return status.Error(codes.Unavailable, "hangar: the event watch ended (the replica is shutting down); resume with after_seq")
}

// matches applies the request's group and server filters.
func matches(req *hangarv1.WatchEventsRequest, e store.Event) bool {
	return (req.GetGroup() == "" || e.Group == req.GetGroup()) &&
		(req.GetServer() == "" || e.Server == req.GetServer())
}

func eventProto(e store.Event) *hangarv1.Event {
	return &hangarv1.Event{Seq: e.Seq, Time: timestamppb.New(e.Time), Kind: e.Kind, Group: e.Group, Server: e.Server, Message: e.Message}
}
