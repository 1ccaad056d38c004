package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"path"
	"slices"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Rights are what a caller may do. The zero value is none.
type Rights int

// The rights, each including the one before.
const (
	NoRights Rights = iota
	ReadOnly        // List*, Get*, WatchEvents, ApplyConfig with dry_run; AgentService.Connect
	Admin           // everything
)

func (r Rights) String() string {
	switch r {
	case NoRights:
		return "no rights"
	case ReadOnly:
		return "read-only rights"
	case Admin:
		return "admin rights"
	}
	return fmt.Sprintf("Rights(%d)", int(r))
}

// ReadOnlyOrganization, in the Subject Organization of a verified client
// certificate, gives read-only rights; any other verified certificate gives
// admin rights.
const ReadOnlyOrganization = "hangar-read-only"

// readOnlyMethods need read-only rights; every other method needs admin
// rights, so a service registered later is closed until listed here.
// ApplyConfig with dry_run is read-only too (see required).
var readOnlyMethods = []string{
	hangarv1.AdminService_ListGroups_FullMethodName,
	hangarv1.AdminService_GetGroupStatus_FullMethodName,
	hangarv1.AdminService_ListServers_FullMethodName,
	hangarv1.AdminService_GetServerStatus_FullMethodName,
	hangarv1.AdminService_ListAgents_FullMethodName,
	hangarv1.AdminService_GetConfig_FullMethodName,
	hangarv1.AdminService_WatchEvents_FullMethodName,
	hangarv1.AdminService_GetClusterStatus_FullMethodName,
	hangarv1.AgentService_Connect_FullMethodName,
}

// Authorizer authenticates every gRPC call of a replica (agents' and
// operators') and checks that the caller's rights cover the method
// (docs/design.md §6). A caller is authenticated by
//
//   - a bearer token ("authorization: Bearer …"): AdminToken gives admin
//     rights, ReadOnlyToken read-only rights, any other token is refused;
//   - else a verified client certificate (mTLS): read-only if its Subject
//     Organization includes ReadOnlyOrganization, admin otherwise;
//   - else, only when neither token is set, nothing: the server then relies
//     on the transport (loopback, or mTLS refusing certificate-less
//     connections) and the caller has admin rights.
//
// Set the fields before use; an Authorizer is then safe for concurrent use.
type Authorizer struct {
	AdminToken    string // bearer token with admin rights; "" means none
	ReadOnlyToken string // bearer token with read-only rights; "" means none
}

// caller is who makes a call, once authenticated.
type caller struct {
	rights Rights
	name   string // for events and messages: "the admin token", "certificate CN=ops"
}

type callerKey struct{}

// callerName names the caller in events; "an operator" when the call did
// not pass an Authorizer.
func callerName(ctx context.Context) string {
	if c, ok := ctx.Value(callerKey{}).(caller); ok {
		return c.name
	}
	return "an operator"
}

// UnaryInterceptor authenticates and authorizes unary calls.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authorize(ctx, info.FullMethod, req)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates and authorizes streaming calls.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authorize(ss.Context(), info.FullMethod, nil)
		if err != nil {
			return err
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// authorize returns ctx with the caller, or the Unauthenticated or
// PermissionDenied error to answer. req is nil for streams.
func (a *Authorizer) authorize(ctx context.Context, method string, req any) (context.Context, error) {
	c, err := a.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	need := required(method, req)
	if c.rights < need {
		what := path.Base(method)
		if method == hangarv1.AdminService_ApplyConfig_FullMethodName {
			what += " without dry_run"
		}
		return nil, status.Errorf(codes.PermissionDenied,
			"hangar: %s needs %s, and %s has only %s: use the admin token (--auth-token-file) or a client certificate without Organization %q",
			what, need, c.name, c.rights, ReadOnlyOrganization)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// required is the right a call needs.
func required(method string, req any) Rights {
	if r, ok := req.(*hangarv1.ApplyConfigRequest); ok && method == hangarv1.AdminService_ApplyConfig_FullMethodName && r.GetDryRun() {
		return ReadOnly
	}
	if slices.Contains(readOnlyMethods, method) {
		return ReadOnly
	}
	return Admin
}

func (a *Authorizer) authenticate(ctx context.Context) (caller, error) {
	tokens := a.AdminToken != "" || a.ReadOnlyToken != ""
	if got, err := auth.AuthFromMD(ctx, "bearer"); err == nil && tokens {
		switch {
		case equal(got, a.AdminToken):
			return caller{Admin, "the admin token"}, nil
		case equal(got, a.ReadOnlyToken):
			return caller{ReadOnly, "the read-only token"}, nil
		}
		return caller{}, status.Error(codes.Unauthenticated, "hangar: the bearer token is not valid")
	}
	if c, ok := certCaller(ctx); ok {
		return c, nil
	}
	if !tokens {
		return caller{Admin, "an unauthenticated caller"}, nil
	}
	return caller{}, status.Error(codes.Unauthenticated, "hangar: a valid bearer token or client certificate is required")
}

// equal compares a token in constant time; an unset token matches nothing.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// certCaller reads the rights of the peer's verified client certificate.
func certCaller(ctx context.Context) (caller, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return caller{}, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return caller{}, false
	}
	leaf := ti.State.VerifiedChains[0][0]
	name := "certificate CN=" + leaf.Subject.CommonName
	if slices.Contains(leaf.Subject.Organization, ReadOnlyOrganization) {
		return caller{ReadOnly, name}, true
	}
	return caller{Admin, name}, true
}
