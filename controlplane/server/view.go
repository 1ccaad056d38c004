package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// view is one snapshot version as a replica serves it: each group's and
// member's state by id, and the messages built from it for the agents,
// each encoded once and shared by every agent that gets the same one
// (docs/design.md §4.1). A state that did not change since the previous
// version is the same pointer in both views, so a delta is a pointer
// comparison per group.
type view struct {
	version uint64
	nonce   string
	created *timestamppb.Timestamp
	yaml    []byte // the fleet file
	hash    string // its SHA-256 (hex)
	groups  map[string]*hangarv1.GroupState
	servers map[string]*hangarv1.ServerState
	members map[string][]string // group → member ids
	// byServer maps a member to the groups it belongs to.
	byServer map[string][]string
	// groupIDs and serverIDs list every id, sorted.
	groupIDs, serverIDs []string

	mu         sync.Mutex
	cache      map[string]*outMsg // by what decides the content; nil once the view is superseded
	cacheBytes int                // bytes of the cached messages
}

// cacheBudget bounds the bytes of messages one view keeps to share. Past
// it (many agents with distinct group sets connecting with a stale fleet
// file), messages are built for their agent alone and not kept.
const cacheBudget = 8 << 20

// newView indexes a snapshot record; prev (the previous version, may be
// nil) lends its pointers to the states that did not change.
func newView(rec *hangarv1.SnapshotRecord, version uint64, nonce string, prev *view) *view {
	snap := rec.GetSnapshot()
	v := &view{
		version: version, nonce: nonce, created: snap.GetCreated(), yaml: snap.GetFleetConfig(), hash: snap.GetConfigHash(),
		groups: make(map[string]*hangarv1.GroupState, len(snap.GetGroups())), servers: make(map[string]*hangarv1.ServerState, len(snap.GetServers())),
		members: make(map[string][]string, len(rec.GetMembers())), byServer: map[string][]string{}, cache: map[string]*outMsg{},
	}
	if prev != nil && prev.hash == v.hash {
		v.yaml = prev.yaml // one copy of the file for all the versions kept
	}
	for _, g := range snap.GetGroups() {
		if p := prev.group(g.GetId()); p != nil && proto.Equal(p, g) {
			g = p
		}
		v.groups[g.GetId()] = g
		v.groupIDs = append(v.groupIDs, g.GetId())
	}
	for _, s := range snap.GetServers() {
		if p := prev.server(s.GetId()); p != nil && proto.Equal(p, s) {
			s = p
		}
		v.servers[s.GetId()] = s
		v.serverIDs = append(v.serverIDs, s.GetId())
	}
	for g, m := range rec.GetMembers() {
		v.members[g] = m.GetIds()
		for _, id := range m.GetIds() {
			v.byServer[id] = append(v.byServer[id], g)
		}
	}
	slices.Sort(v.groupIDs)
	slices.Sort(v.serverIDs)
	return v
}

func (v *view) group(id string) *hangarv1.GroupState {
	if v == nil {
		return nil
	}
	return v.groups[id]
}

func (v *view) server(id string) *hangarv1.ServerState {
	if v == nil {
		return nil
	}
	return v.servers[id]
}

// retire drops the view's shared messages: it is no longer the latest, and
// is kept only as the base of deltas.
func (v *view) retire() {
	v.mu.Lock()
	v.cache, v.cacheBytes = nil, 0
	v.mu.Unlock()
}

// subscription is which groups an agent gets routing state for: the
// groups its Hello names and those it reported calls to, else the groups
// of the members its Hello lists, else (neither) every group.
type subscription struct {
	all      bool
	explicit []string // sorted
	servers  []string // Hello.servers, when Hello names no group
	// groups is the subscription resolved against the fleet file of hash.
	groups []string
	hash   string
}

func newSubscription(h *hangarv1.Hello) subscription {
	s := subscription{explicit: slices.Clone(h.GetGroups())}
	slices.Sort(s.explicit)
	s.explicit = slices.Compact(s.explicit)
	if len(s.explicit) == 0 {
		s.servers = h.GetServers()
		s.all = len(s.servers) == 0
	}
	return s
}

// resolve returns the subscribed groups of v that exist, sorted; the
// result is kept until the fleet file changes.
func (s *subscription) resolve(v *view) []string {
	if s.all {
		return v.groupIDs
	}
	if s.hash != v.hash || s.groups == nil {
		s.groups, s.hash = s.in(v), v.hash
	}
	return s.groups
}

// in resolves the subscription against v without keeping the result.
func (s *subscription) in(v *view) []string {
	if s.all {
		return v.groupIDs
	}
	if s.hash == v.hash && s.groups != nil {
		return s.groups
	}
	out := make([]string, 0, len(s.explicit))
	for _, g := range s.explicit {
		if v.groups[g] != nil {
			out = append(out, g)
		}
	}
	for _, id := range s.servers {
		out = append(out, v.byServer[id]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// add subscribes to group g (the agent called it); false if it already
// was.
func (s *subscription) add(g string) bool {
	if s.all || contains(s.groups, g) {
		return false
	}
	i, ok := slices.BinarySearch(s.explicit, g)
	if ok {
		return false
	}
	s.explicit = slices.Insert(s.explicit, i, g)
	s.groups, s.hash = nil, "" // resolve again
	return true
}

// serversOf returns the members of groups, sorted, without repeats.
func (v *view) serversOf(groups []string, all bool) []string {
	if all {
		return v.serverIDs
	}
	var out []string
	for _, g := range groups {
		out = append(out, v.members[g]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// full returns the full snapshot of groups (all: every group), with the
// fleet file if withConfig.
func (v *view) full(groups []string, all, withConfig bool) *outMsg {
	key := "F" + flag(withConfig) + "|" + subKey(groups, all)
	if m := v.cached(key); m != nil {
		return m
	}
	snap := v.header(withConfig)
	for _, g := range groups {
		snap.Groups = append(snap.Groups, v.groups[g])
	}
	for _, id := range v.serversOf(groups, all) {
		if s := v.servers[id]; s != nil {
			snap.Servers = append(snap.Servers, s)
		}
	}
	return v.keep(key, newOutMsg(snap, kindFull))
}

// delta returns the delta from base to v for an agent that runs version
// baseVersion, whose state for its groups is base's; extra lists groups
// to send whatever changed. When none of the agent's groups changed, the
// delta is the version alone (some 60 bytes, shared by every such agent),
// so that every agent's version and ACK follow the leader's.
func (v *view) delta(base *view, baseVersion uint64, sub *subscription, withConfig bool, extra []string) *outMsg {
	groups, oldGroups := sub.resolve(v), sub.in(base)
	if len(extra) > 0 { // as if the agent had none of them
		oldGroups = slices.DeleteFunc(slices.Clone(oldGroups), func(g string) bool { return slices.Contains(extra, g) })
	}
	key := "D" + strconv.FormatUint(baseVersion, 10) + "." + strconv.FormatUint(base.version, 10) + flag(withConfig) +
		"|" + subKey(groups, sub.all) + "|" + subKey(oldGroups, sub.all) + "|" + strings.Join(extra, ",")
	if m := v.cached(key); m != nil {
		return m
	}
	snap := v.header(withConfig)
	snap.Delta, snap.BaseVersion = true, baseVersion
	for _, g := range groups {
		if v.groups[g] != base.groups[g] || !contains(oldGroups, g) || slices.Contains(extra, g) {
			snap.Groups = append(snap.Groups, v.groups[g])
		}
	}
	for _, g := range oldGroups {
		if !contains(groups, g) {
			snap.RemovedGroups = append(snap.RemovedGroups, g)
		}
	}
	servers, oldServers := v.serversOf(groups, sub.all), base.serversOf(oldGroups, sub.all)
	for _, id := range servers {
		if s := v.servers[id]; s != nil && (s != base.servers[id] || !contains(oldServers, id)) {
			snap.Servers = append(snap.Servers, s)
		}
	}
	for _, id := range oldServers {
		if !contains(servers, id) {
			snap.RemovedServers = append(snap.RemovedServers, id)
		}
	}
	// Agents of other groups may get the same change: share it.
	content := "C" + strconv.FormatUint(baseVersion, 10) + flag(withConfig) + "|" + strings.Join(groupIDsOf(snap.Groups), ",") +
		"|" + strings.Join(snap.RemovedGroups, ",") + "|" + strings.Join(serverIDsOf(snap.Servers), ",") + "|" + strings.Join(snap.RemovedServers, ",")
	return v.keep(key, v.keep(content, newOutMsg(snap, kindDelta)))
}

func groupIDsOf(gs []*hangarv1.GroupState) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.GetId()
	}
	return out
}

func serverIDsOf(ss []*hangarv1.ServerState) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.GetId()
	}
	return out
}

// header is a snapshot of v without states.
func (v *view) header(withConfig bool) *hangarv1.Snapshot {
	s := &hangarv1.Snapshot{Version: v.version, Nonce: v.nonce, Created: v.created, ConfigHash: v.hash}
	if withConfig {
		s.FleetConfig = v.yaml
	}
	return s
}

// cached returns the message kept under key, nil if none.
func (v *view) cached(key string) *outMsg {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cache[key]
}

// keep shares m under key while the budget allows, and returns it.
func (v *view) keep(key string, m *outMsg) *outMsg {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cache == nil {
		return m
	}
	if old, ok := v.cache[key]; ok {
		return old // built twice concurrently: share the first
	}
	size := len(key) + m.size
	if v.cacheBytes+size <= cacheBudget {
		v.cache[key] = m
		v.cacheBytes += size
	}
	return m
}

func subKey(groups []string, all bool) string {
	if all {
		return "*"
	}
	return strings.Join(groups, ",")
}

func flag(b bool) string {
	if b {
		return "+"
	}
	return "-"
}

func contains(sorted []string, s string) bool {
	_, ok := slices.BinarySearch(sorted, s)
	return ok
}

// Kinds of message, for the sent-bytes metric.
const (
	kindFull       = "full"
	kindDelta      = "delta"
	kindAssignment = "assignment"
)

// outMsg is one message for one or more agents: encoded once per send
// compressor, by the first stream with that compressor that sends it, and
// the bytes shared by every such stream after.
type outMsg struct {
	msg  *hangarv1.ControlMessage
	kind string
	size int // encoded bytes

	mu  sync.Mutex
	pms map[string]*grpc.PreparedMsg // by the name of the send compressor ("" for none)
}

func newOutMsg(snap *hangarv1.Snapshot, kind string) *outMsg {
	return newControlMsg(&hangarv1.ControlMessage{Msg: &hangarv1.ControlMessage_Snapshot{Snapshot: snap}}, kind)
}

func newControlMsg(msg *hangarv1.ControlMessage, kind string) *outMsg {
	return &outMsg{msg: msg, kind: kind, size: proto.Size(msg)}
}

// prepared returns what to pass to s.SendMsg: the message encoded with s's
// codec and compressor, shared by every stream with that compressor.
// grpc-go encodes a PreparedMsg with the compressor of the stream that
// encodes it, and a server stream compresses with the compressor the agent
// sent with (gzip is registered in the binary): bytes compressed for one
// agent, sent to an agent that sent uncompressed, would break its stream.
// A stream whose compressor is unknown gets the message unshared.
func (m *outMsg) prepared(s grpc.ServerStream) (any, error) {
	comp, ok := sendCompressor(s.Context())
	if !ok {
		return m.msg, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pm := m.pms[comp]; pm != nil {
		return pm, nil
	}
	pm := &grpc.PreparedMsg{}
	if err := pm.Encode(s, m.msg); err != nil {
		return nil, fmt.Errorf("encode control message: %w", err)
	}
	if m.pms == nil {
		m.pms = make(map[string]*grpc.PreparedMsg, 1)
	}
	m.pms[comp] = pm
	return pm, nil
}

// sendCompressor names the compressor a server stream encodes messages
// with, as grpc-go set it when the stream started ("" for none); false if
// the stream does not say.
func sendCompressor(ctx context.Context) (string, bool) {
	ts, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ SendCompress() string })
	if !ok {
		return "", false
	}
	return ts.SendCompress(), true
}
