package admin

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// notFound is an unknown group, server or member; its message names the
// valid ids.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

func notFoundf(format string, args ...any) error {
	return &notFound{msg: fmt.Sprintf(format, args...)}
}

// toStatus maps an error to the gRPC status a client sees. It is the only
// place where the service chooses codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err // already a status, chosen on purpose
	}
	var nf *notFound
	var cfg fleetfile.Errors
	var etcdErr rpctypes.EtcdError
	switch {
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, &cfg):
		// The parser's text, one file:line problem per line.
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrBadName):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrSessionExpired):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.As(err, &etcdErr):
		return etcdStatus(etcdCode(etcdErr.Code()), err)
	}
	if st, ok := status.FromError(err); ok { // an etcd RPC's status, wrapped
		return etcdStatus(etcdCode(st.Code()), err)
	}
	return status.Error(codes.Internal, err.Error())
}

// etcdCode is the code of an admin call that failed on an etcd error:
// etcd being unreachable, leaderless or overloaded is Unavailable, a
// timeout is DeadlineExceeded; anything else is the service's own fault.
func etcdCode(c codes.Code) codes.Code {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted:
		return c
	}
	return codes.Internal
}

// etcdStatus is the status of a call that failed on etcd; Unavailable
// carries ReasonEtcdUnavailable (the replica answered, etcd did not).
func etcdStatus(c codes.Code, err error) error {
	msg := "etcd: " + err.Error()
	if c == codes.Unavailable {
		return etcdUnavailable(msg + " (etcd is down or has lost quorum)")
	}
	return status.Error(c, msg)
}
