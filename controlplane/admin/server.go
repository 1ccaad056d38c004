package admin

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hangarmesh/hangar/controlplane/aggregate"
	"github.com/hangarmesh/hangar/controlplane/server"
	"github.com/hangarmesh/hangar/controlplane/store"
	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/fleetfile"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// Server implements hangarv1.AdminServiceServer on one replica. It keeps no
// state between calls and is safe for concurrent use.
type Server struct {
	hangarv1.UnimplementedAdminServiceServer
	rep *server.Replica
	st  *store.Store
	log *slog.Logger
	clk clock.Clock
}

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives the operators' writes; nil discards them.
	Logger *slog.Logger
	// Clock dates rates and call windows; nil means the wall clock.
	Clock clock.Clock
}

// New returns the AdminService of rep, reading and writing rep's store.
func New(rep *server.Replica, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &Server{rep: rep, st: rep.Store(), log: o.Logger, clk: o.Clock}
}

// fleet reads and parses the stored fleet config; nil when none is stored.
func (s *Server) fleet(ctx context.Context) ([]byte, *fleetfile.Fleet, error) {
	data, _, err := s.st.Config(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 {
		return nil, nil, nil
	}
	f, err := fleetfile.ParseAs(fleetfile.ControlPlane, "etcd:config", data)
	if err != nil {
		// Stored configs were validated: the environment must differ.
		return nil, nil, fmt.Errorf("the stored fleet config no longer parses on replica %s: %w", s.rep.Name(), err)
	}
	return data, f, nil
}

// view is everything a read answers from, taken at one moment.
type view struct {
	now     time.Time
	yaml    []byte           // the stored fleet file
	fleet   *fleetfile.Fleet // nil when no config is stored
	rec     *hangarv1.SnapshotRecord
	version uint64 // the snapshot's; 0 when none was written
	agents  []*hangarv1.AgentReport
	drained map[string][]string
	out     aggregate.Output
	events  []store.Event // the kept log, oldest first; only if asked for
}

// load reads a view; withEvents also reads the event log.
func (s *Server) load(ctx context.Context, withEvents bool) (*view, error) {
	v := &view{now: s.clk.Now()}
	var err error
	if v.yaml, v.fleet, err = s.fleet(ctx); err != nil {
		return nil, err
	}
	data, rev, err := s.st.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	v.rec = &hangarv1.SnapshotRecord{}
	if err := proto.Unmarshal(data, v.rec); err != nil {
		return nil, fmt.Errorf("decode snapshot %d: %w", rev, err)
	}
	v.version = uint64(rev)
	if v.agents, err = s.agents(ctx); err != nil {
		return nil, err
	}
	if v.drained, err = s.st.Drained(ctx); err != nil {
		return nil, err
	}
	views := make([]aggregate.AgentView, 0, len(v.agents))
	sha := fleetfile.Hash(v.yaml)
	for _, ar := range v.agents {
		if !server.IsLocal(ar.GetHello(), sha) {
			views = append(views, server.AgentView(ar))
		}
	}
	v.out = aggregate.Compute(aggregate.Input{Fleet: v.fleet, Agents: views, Drained: v.drained, Now: v.now})
	if withEvents {
		if v.events, err = s.st.Events(ctx, 0, 0); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// agents returns every connected agent, one report per agent id (the most
// recently received, should an agent that just moved show on two
// replicas), sorted by id.
func (s *Server) agents(ctx context.Context) ([]*hangarv1.AgentReport, error) {
	all, err := s.rep.Agents(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*hangarv1.AgentReport, len(all))
	for _, ar := range all {
		id := ar.GetHello().GetAgentId()
		if old, ok := byID[id]; !ok || ar.GetReceived().AsTime().After(old.GetReceived().AsTime()) {
			byID[id] = ar
		}
	}
	out := make([]*hangarv1.AgentReport, 0, len(byID))
	for _, ar := range byID {
		out = append(out, ar)
	}
	slices.SortFunc(out, func(a, b *hangarv1.AgentReport) int {
		return strings.Compare(a.GetHello().GetAgentId(), b.GetHello().GetAgentId())
	})
	return out, nil
}

// acked counts the agents running the snapshot.
func (v *view) acked() int32 {
	var n int32
	for _, ar := range v.agents {
		if v.version != 0 && ar.GetAckedVersion() == v.version {
			n++
		}
	}
	return n
}

// groupState is the snapshot's decision on a group, nil if it has none.
func (v *view) groupState(id string) *hangarv1.GroupState {
	for _, g := range v.rec.GetSnapshot().GetGroups() {
		if g.GetId() == id {
			return g
		}
	}
	return nil
}

// serverState is the snapshot's decision on a server, nil if it has none.
func (v *view) serverState(id string) *hangarv1.ServerState {
	for _, st := range v.rec.GetSnapshot().GetServers() {
		if st.GetId() == id {
			return st
		}
	}
	return nil
}

// group returns the group or a NotFound error naming the valid ids.
func (v *view) group(id string) (*fleetfile.Group, error) {
	return lookupGroup(v.fleet, id)
}

func lookupGroup(f *fleetfile.Fleet, id string) (*fleetfile.Group, error) {
	if g, ok := f.Group(id); ok {
		return g, nil
	}
	if f == nil {
		return nil, notFoundf("no group %q: no fleet config is stored (apply one with hangarctl config apply)", id)
	}
	return nil, notFoundf("no group %q in the fleet config (groups: %s)", id, list(sortedKeys(f.Groups)))
}

func lookupMember(g *fleetfile.Group, id string) error {
	ids := make([]string, 0, len(g.Members))
	for _, m := range g.Members {
		if m.ID == id {
			return nil
		}
		ids = append(ids, m.ID)
	}
	return notFoundf("group %q has no member %q (members: %s)", g.ID, id, list(ids))
}

func list(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
