package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

const (
	adminToken    = "admin-token-0123456789"
	readOnlyToken = "read-only-token-0123456789"
)

func TestAuthorization(t *testing.T) {
	e := newEnv(t, &Authorizer{AdminToken: adminToken, ReadOnlyToken: readOnlyToken})
	drain := &hangarv1.DrainMemberRequest{Group: group, Member: primary}

	t.Run("no token", func(t *testing.T) {
		_, err := e.admin.ListGroups(e.ctx, &hangarv1.ListGroupsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("ListGroups without a token: %v, want Unauthenticated", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		_, err := e.admin.ListGroups(e.as("not-the-token-0123456789"), &hangarv1.ListGroupsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("ListGroups with a wrong token: %v, want Unauthenticated", err)
		}
	})
	t.Run("read-only token reads", func(t *testing.T) {
		ro := e.as(readOnlyToken)
		if _, err := e.admin.ListGroups(ro, &hangarv1.ListGroupsRequest{}); err != nil {
			t.Errorf("ListGroups: %v", err)
		}
		if _, err := e.admin.ApplyConfig(ro, &hangarv1.ApplyConfigRequest{Config: e.fleet, DryRun: true}); err != nil {
			t.Errorf("ApplyConfig dry run: %v", err)
		}
		stream, err := e.admin.WatchEvents(ro, &hangarv1.WatchEventsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.Unauthenticated {
			t.Errorf("WatchEvents: %v", err)
		}
	})
	t.Run("read-only token cannot drain", func(t *testing.T) {
		_, err := e.admin.DrainMember(e.as(readOnlyToken), drain)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "DrainMember needs admin rights") {
			t.Errorf("DrainMember: %v; want PermissionDenied saying it needs admin rights", err)
		}
		_, err = e.admin.ApplyConfig(e.as(readOnlyToken), &hangarv1.ApplyConfigRequest{Config: e.fleet})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "ApplyConfig without dry_run needs admin rights") {
			t.Errorf("ApplyConfig: %v; want PermissionDenied", err)
		}
		if d, _ := e.store.Drained(e.ctx); len(d) != 0 {
			t.Errorf("drained %v after a refused drain", d)
		}
	})
	t.Run("admin token drains", func(t *testing.T) {
		if _, err := e.admin.DrainMember(e.as(adminToken), drain); err != nil {
			t.Fatalf("DrainMember: %v", err)
		}
		if evs := e.eventsOf("member_drained"); len(evs) != 1 || evs[0].Message != "drained by the admin token" {
			t.Errorf("member_drained events %v; want one naming the admin token", evs)
		}
	})
	t.Run("agents connect with either token", func(t *testing.T) {
		e.token = readOnlyToken
		a := e.connect("agent-ro", true)
		a.Await("a snapshot", 0, func(*hangarv1.Snapshot) bool { return true })
	})
}

// TestAuthorizerRights checks how each credential maps to rights, without
// a network: the peer and metadata are put in the context as gRPC does.
func TestAuthorizerRights(t *testing.T) {
	cert := func(org ...string) context.Context {
		leaf := &x509.Certificate{Subject: pkix.Name{CommonName: "ops", Organization: org}}
		ti := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}}
		return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: ti})
	}
	unverified := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{}})
	bearer := func(ctx context.Context, tok string) context.Context {
		return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
	}
	tokens := &Authorizer{AdminToken: adminToken, ReadOnlyToken: readOnlyToken}
	none := &Authorizer{}
	const (
		drain  = hangarv1.AdminService_DrainMember_FullMethodName
		list   = hangarv1.AdminService_ListGroups_FullMethodName
		apply  = hangarv1.AdminService_ApplyConfig_FullMethodName
		watch  = hangarv1.AdminService_WatchEvents_FullMethodName
		conn   = hangarv1.AgentService_Connect_FullMethodName
		health = "/grpc.health.v1.Health/Check"
	)
	tests := []struct {
		name   string
		a      *Authorizer
		ctx    context.Context
		method string
		req    any
		want   codes.Code
	}{
		{"read-only cert lists", none, cert("acme", ReadOnlyOrganization), list, nil, codes.OK},
		{"read-only cert watches", none, cert(ReadOnlyOrganization), watch, nil, codes.OK},
		{"read-only cert connects as an agent", none, cert(ReadOnlyOrganization), conn, nil, codes.OK},
		{"read-only cert cannot drain", none, cert(ReadOnlyOrganization), drain, nil, codes.PermissionDenied},
		{"read-only cert may dry-run", none, cert(ReadOnlyOrganization), apply, &hangarv1.ApplyConfigRequest{DryRun: true}, codes.OK},
		{"read-only cert cannot apply", none, cert(ReadOnlyOrganization), apply, &hangarv1.ApplyConfigRequest{}, codes.PermissionDenied},
		{"other cert drains", none, cert("acme"), drain, nil, codes.OK},
		{"cert without token when tokens are set", tokens, cert("acme"), drain, nil, codes.OK},
		{"token decides over the cert", tokens, bearer(cert("acme"), readOnlyToken), drain, nil, codes.PermissionDenied},
		{"unverified TLS and no token", tokens, unverified, list, nil, codes.Unauthenticated},
		{"no auth configured: callers are admins", none, context.Background(), drain, nil, codes.OK},
		{"unknown methods need admin rights", none, cert(ReadOnlyOrganization), health, nil, codes.PermissionDenied},
		{"read-only token lists", tokens, bearer(context.Background(), readOnlyToken), list, nil, codes.OK},
		{"admin token drains", tokens, bearer(context.Background(), adminToken), drain, nil, codes.OK},
		{"empty token", tokens, bearer(context.Background(), ""), list, nil, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.a.authorize(tt.ctx, tt.method, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Errorf("got %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
