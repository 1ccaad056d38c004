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

	"github.com/hangarmesh/hangar/controlplane/server/servertest"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

const (
	adminToken    = "admin-token-0123456789"
	readOnlyToken = "read-only-token-0123456789"
	agentToken    = "agent-1-token-0123456789"
)

func TestAuthorization(t *testing.T) {
	e := newEnv(t, &Authorizer{AdminToken: adminToken, ReadOnlyToken: readOnlyToken,
		AgentTokens: map[string]string{"agent-1": agentToken}})
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
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "DrainMember needs the admin role") {
			t.Errorf("DrainMember: %v; want PermissionDenied saying it needs admin rights", err)
		}
		_, err = e.admin.ApplyConfig(e.as(readOnlyToken), &hangarv1.ApplyConfigRequest{Config: e.fleet})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "ApplyConfig without dry_run needs the admin role") {
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
	t.Run("read-only token cannot connect as an agent", func(t *testing.T) {
		a := e.replica.Connect(t, "agent-ro", servertest.AgentOptions{Token: readOnlyToken})
		servertest.Eventually(t, "the stream to end", func() bool { return a.StreamErr() != nil })
		if err := a.StreamErr(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("Connect with the read-only token: %v, want PermissionDenied", err)
		}
	})
	t.Run("agent token connects only as its agent", func(t *testing.T) {
		a := e.replica.Connect(t, "agent-1", servertest.AgentOptions{Token: agentToken})
		a.Await("a snapshot", 0, func(*hangarv1.Snapshot) bool { return true })
		b := e.replica.Connect(t, "agent-2", servertest.AgentOptions{Token: agentToken})
		servertest.Eventually(t, "the stream to end", func() bool { return b.StreamErr() != nil })
		if err := b.StreamErr(); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `may connect only as agent "agent-1"`) {
			t.Errorf("Connect as agent-2 with agent-1's token: %v, want PermissionDenied naming agent-1", err)
		}
		if _, err := e.admin.ListGroups(e.as(agentToken), &hangarv1.ListGroupsRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("ListGroups with an agent token: %v, want PermissionDenied", err)
		}
	})
}

// TestAuthorizerRoles checks how each credential maps to a role and what
// each role may call, without a network: the peer and metadata are put in
// the context as gRPC does.
func TestAuthorizerRoles(t *testing.T) {
	cert := func(cn string, org ...string) context.Context {
		leaf := &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: org}, DNSNames: []string{cn + ".agents.example"}}
		ti := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}}
		return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: ti})
	}
	unverified := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{}})
	bearer := func(ctx context.Context, tok string) context.Context {
		return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
	}
	tokens := &Authorizer{AdminToken: adminToken, ReadOnlyToken: readOnlyToken, AgentTokens: map[string]string{"agent-1": agentToken}}
	none := &Authorizer{}
	const (
		drain  = hangarv1.AdminService_DrainMember_FullMethodName
		list   = hangarv1.AdminService_ListGroups_FullMethodName
		apply  = hangarv1.AdminService_ApplyConfig_FullMethodName
		watch  = hangarv1.AdminService_WatchEvents_FullMethodName
		hist   = hangarv1.AdminService_ListConfigHistory_FullMethodName
		conn   = hangarv1.AgentService_Connect_FullMethodName
		health = "/grpc.health.v1.Health/Check"
	)
	dry := &hangarv1.ApplyConfigRequest{DryRun: true}
	tests := []struct {
		name   string
		a      *Authorizer
		ctx    context.Context
		method string
		req    any
		want   codes.Code
		role   Role // when want is OK
	}{
		// The certificate rule: exactly one role Organization.
		{"admin cert drains", none, cert("ops", "acme", AdminOrganization), drain, nil, codes.OK, Admin},
		{"admin cert connects", none, cert("ops", AdminOrganization), conn, nil, codes.OK, Admin},
		{"read-only cert lists", none, cert("ops", "acme", ReadOnlyOrganization), list, nil, codes.OK, ReadOnly},
		{"read-only cert watches", none, cert("ops", ReadOnlyOrganization), watch, nil, codes.OK, ReadOnly},
		{"read-only cert reads the history", none, cert("ops", ReadOnlyOrganization), hist, nil, codes.OK, ReadOnly},
		{"read-only cert may dry-run", none, cert("ops", ReadOnlyOrganization), apply, dry, codes.OK, ReadOnly},
		{"read-only cert cannot apply", none, cert("ops", ReadOnlyOrganization), apply, &hangarv1.ApplyConfigRequest{}, codes.PermissionDenied, 0},
		{"read-only cert cannot drain", none, cert("ops", ReadOnlyOrganization), drain, nil, codes.PermissionDenied, 0},
		{"read-only cert cannot connect", none, cert("ops", ReadOnlyOrganization), conn, nil, codes.PermissionDenied, 0},
		{"agent cert connects", none, cert("a1", AgentOrganization), conn, nil, codes.OK, AgentRole},
		{"agent cert cannot list", none, cert("a1", AgentOrganization), list, nil, codes.PermissionDenied, 0},
		{"agent cert cannot dry-run", none, cert("a1", AgentOrganization), apply, dry, codes.PermissionDenied, 0},
		{"agent cert cannot drain", none, cert("a1", AgentOrganization), drain, nil, codes.PermissionDenied, 0},
		{"cert without a role is refused", none, cert("ops", "acme"), list, nil, codes.PermissionDenied, 0},
		{"cert with two roles is refused", none, cert("ops", AdminOrganization, AgentOrganization), list, nil, codes.PermissionDenied, 0},
		{"unknown methods need the admin role", none, cert("ops", ReadOnlyOrganization), health, nil, codes.PermissionDenied, 0},
		// Tokens.
		{"cert without token when tokens are set", tokens, cert("ops", AdminOrganization), drain, nil, codes.OK, Admin},
		{"token decides over the cert", tokens, bearer(cert("ops", AdminOrganization), readOnlyToken), drain, nil, codes.PermissionDenied, 0},
		{"unverified TLS and no token", tokens, unverified, list, nil, codes.Unauthenticated, 0},
		{"no auth configured: callers are admins", none, context.Background(), drain, nil, codes.OK, Admin},
		{"read-only token lists", tokens, bearer(context.Background(), readOnlyToken), list, nil, codes.OK, ReadOnly},
		{"read-only token cannot connect", tokens, bearer(context.Background(), readOnlyToken), conn, nil, codes.PermissionDenied, 0},
		{"admin token drains", tokens, bearer(context.Background(), adminToken), drain, nil, codes.OK, Admin},
		{"agent token connects", tokens, bearer(context.Background(), agentToken), conn, nil, codes.OK, AgentRole},
		{"agent token cannot list", tokens, bearer(context.Background(), agentToken), list, nil, codes.PermissionDenied, 0},
		{"empty token", tokens, bearer(context.Background(), ""), list, nil, codes.Unauthenticated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := tt.a.authorize(tt.ctx, tt.method, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if err == nil {
				if c := ctx.Value(callerKey{}).(caller); c.role != tt.role {
					t.Errorf("role %v, want %v", c.role, tt.role)
				}
			}
		})
	}
}

// TestAdmitAgent checks which agent ids each credential may connect as.
func TestAdmitAgent(t *testing.T) {
	with := func(c caller) context.Context { return context.WithValue(context.Background(), callerKey{}, c) }
	tests := []struct {
		name string
		ctx  context.Context
		id   string
		ok   bool
	}{
		{"agent cert as its CN", with(caller{AgentRole, "certificate CN=a1", []string{"a1", "a1.example"}}), "a1", true},
		{"agent cert as its DNS SAN", with(caller{AgentRole, "certificate CN=a1", []string{"a1", "a1.example"}}), "a1.example", true},
		{"agent cert as another id", with(caller{AgentRole, "certificate CN=a1", []string{"a1"}}), "a2", false},
		{"agent token as another id", with(caller{AgentRole, `the agent token of "a1"`, []string{"a1"}}), "a2", false},
		{"admin as any id", with(caller{Admin, "the admin token", nil}), "a2", true},
		{"no authorizer", context.Background(), "a2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AdmitAgent(tt.ctx, tt.id)
			if (err == nil) != tt.ok {
				t.Errorf("AdmitAgent(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && status.Code(err) != codes.PermissionDenied {
				t.Errorf("code %v, want PermissionDenied", status.Code(err))
			}
		})
	}
}
