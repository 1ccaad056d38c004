package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ReasonEtcdUnavailable is the ErrorInfo reason of an admin call refused
// because the replica cannot reach etcd (down, or without quorum): the
// replica answered, etcd did not. hangarctl tells it apart from an
// unreachable replica by it.
const (
	ReasonEtcdUnavailable = "ETCD_UNAVAILABLE"
	errorDomain           = "hangar.dev"
)

const adminPrefix = "/hangar.v1.AdminService/"

// EtcdCallTimeout bounds the etcd work of one unary admin call: etcd's
// client retries a leaderless member until its deadline, so without one a
// call would wait as long as the caller does.
const EtcdCallTimeout = 3 * time.Second

// readiness is what the guard asks the replica.
type readiness interface {
	Name() string
	Ready() (ok bool, since time.Time, cause string)
}

// Guard returns interceptors that make the admin API fail fast when etcd
// cannot serve it: a replica without an etcd session refuses at once, and
// every etcd request of an admin call requires an etcd leader, so a member
// without quorum answers "no leader" rather than waiting for one. Both
// answer Unavailable with ReasonEtcdUnavailable.
func Guard(rep readiness) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	check := func(ctx context.Context, method string) (context.Context, error) {
		if !strings.HasPrefix(method, adminPrefix) {
			return ctx, nil
		}
		if ok, since, cause := rep.Ready(); !ok {
			when := ""
			if !since.IsZero() {
				when = fmt.Sprintf(" for %s", time.Since(since).Round(time.Second))
			}
			return nil, etcdUnavailable(fmt.Sprintf("hangar: replica %s has had no etcd session%s (%s): etcd is down or has lost quorum; "+
				"agents keep their last snapshot, and reads and changes wait until etcd is back", rep.Name(), when, cause))
		}
		return clientv3.WithRequireLeader(ctx), nil
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		cctx, err := check(ctx, info.FullMethod)
		if err != nil || cctx == ctx {
			if err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}
		cctx, cancel := context.WithTimeout(cctx, EtcdCallTimeout)
		defer cancel()
		resp, err := handler(cctx, req)
		if err != nil && ctx.Err() == nil && cctx.Err() != nil {
			return nil, etcdUnavailable(fmt.Sprintf("hangar: etcd did not answer replica %s within %s: etcd is down or has lost quorum; "+
				"agents keep their last snapshot, and reads and changes wait until etcd is back", rep.Name(), EtcdCallTimeout))
		}
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := check(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
	return unary, stream
}

// etcdUnavailable is an Unavailable status with ReasonEtcdUnavailable.
func etcdUnavailable(msg string) error {
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonEtcdUnavailable, Domain: errorDomain}); err == nil {
		st = d
	}
	return st.Err()
}
