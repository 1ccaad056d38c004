package admin

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Role is what a caller may do. The zero value is none. The roles are not
// ordered: an agent may do what read-only callers may not (Connect), and
// the reverse.
type Role int

// The roles (docs/design.md §6).
const (
	NoRole Role = iota
	// AgentRole may only call AgentService.Connect, and only as the agent
	// ids its credential names.
	AgentRole
	// ReadOnly may call the admin API's reads (List*, Get*, WatchEvents,
	// ListConfigHistory) and ApplyConfig with dry_run; not Connect.
	ReadOnly
	// Admin may call everything, Connect as any agent id included.
	Admin
)

func (r Role) String() string {
	switch r {
	case NoRole:
		return "no role"
	case AgentRole:
		return "the agent role"
	case ReadOnly:
		return "the read-only role"
	case Admin:
		return "the admin role"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// The Subject Organizations that give a verified client certificate its
// role. A certificate must carry exactly one of them: one with none, or
// with two, is refused (there is no default role).
const (
	AdminOrganization    = "hangar-admin"
	ReadOnlyOrganization = "hangar-read-only"
	// AgentOrganization: the certificate's agent ids are its Subject
	// Common Name and its DNS Subject Alternative Names.
	AgentOrganization = "hangar-agent"
)

// certRoles is the certificate rule, as a table.
var certRoles = []struct {
	org  string
	role Role
}{
	{AdminOrganization, Admin},
	{ReadOnlyOrganization, ReadOnly},
	{AgentOrganization, AgentRole},
}

// readOnlyMethods are open to read-only callers; ApplyConfig with dry_run
// is too (see allowed). Every other admin method needs Admin, so a method
// added later is closed until listed here.
var readOnlyMethods = []string{
	hangarv1.AdminService_ListGroups_FullMethodName,
	hangarv1.AdminService_GetGroupStatus_FullMethodName,
	hangarv1.AdminService_ListServers_FullMethodName,
	hangarv1.AdminService_GetServerStatus_FullMethodName,
	hangarv1.AdminService_ListAgents_FullMethodName,
	hangarv1.AdminService_GetConfig_FullMethodName,
	hangarv1.AdminService_ListConfigHistory_FullMethodName,
	hangarv1.AdminService_WatchEvents_FullMethodName,
	hangarv1.AdminService_GetClusterStatus_FullMethodName,
}

// Authorizer authenticates every gRPC call of a replica (agents' and
// operators') and checks that the caller's role allows the method
// (docs/design.md §6). A caller is authenticated by
//
//   - a bearer token ("authorization: Bearer …"): AdminToken gives the
//     admin role, ReadOnlyToken the read-only role, a token of AgentTokens
//     the agent role for that one agent id; any other token is refused;
//   - else a verified client certificate (mTLS), by its Subject
//     Organization: AdminOrganization, ReadOnlyOrganization or
//     AgentOrganization (exactly one; see certRoles);
//   - else, only when no token is set, nothing: the server then relies
//     on the transport (loopback, or mTLS refusing certificate-less
//     connections) and the caller has the admin role.
//
// Set the fields before use; an Authorizer is then safe for concurrent use.
type Authorizer struct {
	AdminToken    string            // bearer token with the admin role; "" means none
	ReadOnlyToken string            // bearer token with the read-only role; "" means none
	AgentTokens   map[string]string // agent id → its bearer token (agent role)
	// Current, when set, is asked for the tokens on every call instead of
	// the three fields above: the daemon follows its token files with it,
	// so a rotated token is accepted, and the one it replaced refused,
	// from the next call on without a restart.
	Current func() Tokens
}

// Tokens are the bearer tokens an Authorizer accepts.
type Tokens struct {
	Admin, ReadOnly string
	Agents          map[string]string // agent id → token
}

// tokens are the tokens in force for one call.
func (a *Authorizer) tokens() Tokens {
	if a.Current != nil {
		return a.Current()
	}
	return Tokens{Admin: a.AdminToken, ReadOnly: a.ReadOnlyToken, Agents: a.AgentTokens}
}

// caller is who makes a call, once authenticated.
type caller struct {
	role   Role
	name   string   // for events and messages: "the admin token", "certificate CN=ops"
	agents []string // the agent ids an agent credential names
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

// AdmitAgent checks that the stream's caller may connect as agent id: an
// agent credential only as an id it names. Calls that did not pass the
// Authorizer's interceptors are admitted (no authentication configured).
func AdmitAgent(ctx context.Context, id string) error {
	c, ok := ctx.Value(callerKey{}).(caller)
	if !ok || c.role == Admin {
		return nil
	}
	if c.role == AgentRole && slices.Contains(c.agents, id) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied,
		"hangar: %s may connect only as agent %s, not as %q: start the agent with --agent-id %s, or give it a credential naming %q",
		c.name, strings.Join(quoteAll(c.agents), " or "), id, firstOr(c.agents, "ID"), id)
}

// authorize returns ctx with the caller, or the Unauthenticated or
// PermissionDenied error to answer. req is nil for streams.
func (a *Authorizer) authorize(ctx context.Context, method string, req any) (context.Context, error) {
	c, err := a.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !allowed(c.role, method, req) {
		return nil, denied(c, method)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// allowed says whether role may call method with req.
func allowed(role Role, method string, req any) bool {
	switch role {
	case Admin:
		return true
	case AgentRole:
		return method == hangarv1.AgentService_Connect_FullMethodName
	case ReadOnly:
		if r, ok := req.(*hangarv1.ApplyConfigRequest); ok && method == hangarv1.AdminService_ApplyConfig_FullMethodName {
			return r.GetDryRun()
		}
		return slices.Contains(readOnlyMethods, method)
	}
	return false
}

// denied is the PermissionDenied error for a caller whose role does not
// allow method, saying which role and credential would.
func denied(c caller, method string) error {
	what := path.Base(method)
	var need, hint string
	switch {
	case method == hangarv1.AgentService_Connect_FullMethodName:
		need = "the agent role"
		hint = fmt.Sprintf("give the agent its own credential: a token of --agent-tokens-file, or a certificate with Organization %q and the agent id as Common Name", AgentOrganization)
	case slices.Contains(readOnlyMethods, method):
		need = "the read-only or admin role"
		hint = fmt.Sprintf("use the read-only or admin token, or a certificate with Organization %q or %q", ReadOnlyOrganization, AdminOrganization)
	default:
		if method == hangarv1.AdminService_ApplyConfig_FullMethodName {
			what += " without dry_run"
		}
		need = "the admin role"
		hint = fmt.Sprintf("use the admin token (--auth-token-file) or a certificate with Organization %q", AdminOrganization)
	}
	if c.role == AgentRole && method != hangarv1.AgentService_Connect_FullMethodName {
		hint = "an agent credential may only connect as its agent; " + hint
	}
	return status.Errorf(codes.PermissionDenied, "hangar: %s needs %s, and %s has %s: %s", what, need, c.name, c.role, hint)
}

func (a *Authorizer) authenticate(ctx context.Context) (caller, error) {
	set := a.tokens()
	tokens := set.Admin != "" || set.ReadOnly != "" || len(set.Agents) > 0
	if got, err := auth.AuthFromMD(ctx, "bearer"); err == nil && tokens {
		if c, ok := set.caller(got); ok {
			return c, nil
		}
		return caller{}, status.Error(codes.Unauthenticated, "hangar: the bearer token is not valid")
	}
	if leaf := verifiedLeaf(ctx); leaf != nil {
		return certCaller(leaf)
	}
	if !tokens {
		return caller{Admin, "an unauthenticated caller", nil}, nil
	}
	return caller{}, status.Error(codes.Unauthenticated, "hangar: a valid bearer token or client certificate is required")
}

// caller finds the token's caller, comparing every token in constant
// time.
func (set Tokens) caller(got string) (caller, bool) {
	var c caller
	found := false
	if equal(got, set.Admin) {
		c, found = caller{Admin, "the admin token", nil}, true
	}
	if equal(got, set.ReadOnly) {
		c, found = caller{ReadOnly, "the read-only token", nil}, true
	}
	for id, tok := range set.Agents {
		if equal(got, tok) {
			c, found = caller{AgentRole, fmt.Sprintf("the agent token of %q", id), []string{id}}, true
		}
	}
	return c, found
}

// equal compares a token in constant time; an unset token matches nothing.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// verifiedLeaf is the peer's verified client certificate, nil if none.
func verifiedLeaf(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// certCaller maps a verified certificate to its role by certRoles: exactly
// one role Organization, or the certificate is refused.
func certCaller(leaf *x509.Certificate) (caller, error) {
	name := "certificate CN=" + leaf.Subject.CommonName
	var found []Role
	for _, r := range certRoles {
		if slices.Contains(leaf.Subject.Organization, r.org) {
			found = append(found, r.role)
		}
	}
	switch len(found) {
	case 0:
		return caller{}, status.Errorf(codes.PermissionDenied,
			"hangar: %s has no Hangar role: its Subject Organization must be one of %q (admin), %q (read-only) or %q (agent)",
			name, AdminOrganization, ReadOnlyOrganization, AgentOrganization)
	case 1:
	default:
		return caller{}, status.Errorf(codes.PermissionDenied,
			"hangar: %s names several Hangar roles in its Subject Organization %v: issue it with exactly one", name, leaf.Subject.Organization)
	}
	c := caller{role: found[0], name: name}
	if c.role == AgentRole {
		c.agents = certAgentIDs(leaf)
	}
	return c, nil
}

// certAgentIDs are the agent ids an agent certificate names: its Common
// Name and DNS Subject Alternative Names.
func certAgentIDs(leaf *x509.Certificate) []string {
	var ids []string
	for _, id := range append([]string{leaf.Subject.CommonName}, leaf.DNSNames...) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func firstOr(ss []string, def string) string {
	if len(ss) == 0 {
		return def
	}
	return ss[0]
}
