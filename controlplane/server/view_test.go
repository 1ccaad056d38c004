package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hangarmesh/hangar/internal/clock"
	"github.com/hangarmesh/hangar/internal/snapshot"
	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// fleet is a test decision: groups (id → members), the members out of
// rotation, and a fleet file version (its text changes the hash).
type fleet struct {
	file    string
	groups  map[string][]string
	ejected map[string]bool
}

func (f fleet) record() *hangarv1.SnapshotRecord {
	sum := sha256.Sum256([]byte(f.file))
	snap := &hangarv1.Snapshot{FleetConfig: []byte(f.file), ConfigHash: hex.EncodeToString(sum[:])}
	rec := &hangarv1.SnapshotRecord{Snapshot: snap, Members: map[string]*hangarv1.GroupMembers{}}
	seen := map[string]bool{}
	for _, id := range slices.Sorted(mapsKeys(f.groups)) {
		g := &hangarv1.GroupState{Id: id, State: "healthy"}
		for _, m := range f.groups[id] {
			if !f.ejected[m] {
				g.Rotation = append(g.Rotation, m)
			}
			if !seen[m] {
				seen[m] = true
				st := &hangarv1.ServerState{Id: m, State: hangarv1.MemberState_MEMBER_STATE_READY}
				if f.ejected[m] {
					st.State = hangarv1.MemberState_MEMBER_STATE_DEGRADED
				}
				snap.Servers = append(snap.Servers, st)
			}
		}
		snap.Groups = append(snap.Groups, g)
		rec.Members[id] = &hangarv1.GroupMembers{Ids: f.groups[id]}
	}
	return rec
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func baseFleet() fleet {
	return fleet{file: "v1", groups: map[string][]string{"g1": {"a", "b"}, "g2": {"c", "d"}, "g3": {"e", "f"}}, ejected: map[string]bool{}}
}

func (f fleet) with(change func(*fleet)) fleet {
	out := fleet{file: f.file, groups: map[string][]string{}, ejected: map[string]bool{}}
	for k, v := range f.groups {
		out.groups[k] = slices.Clone(v)
	}
	for k, v := range f.ejected {
		out.ejected[k] = v
	}
	change(&out)
	return out
}

// testHub is a hub fed with decisions by hand, and its agents' queues read
// by the test instead of streams.
type testHub struct {
	t       *testing.T
	h       *hub
	version uint64
}

func newTestHub(t *testing.T) *testHub {
	return &testHub{t: t, h: newHub(slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()), clock.Real{})}
}

func (th *testHub) decide(f fleet) uint64 {
	th.version++
	th.h.broadcast(newView(f.record(), th.version, fmt.Sprintf("n-%d", th.version), th.h.latest.Load()), nil)
	return th.version
}

// testAgent is one connected agent: the state it holds after applying
// what it was sent.
type testAgent struct {
	th     *testHub
	c      *agentConn
	kicked error
	state  *hangarv1.Snapshot
}

func (th *testHub) connect(id string, hello *hangarv1.Hello) *testAgent {
	a := &testAgent{th: th}
	hello.AgentId = id
	a.c = &agentConn{id: id, hello: hello, queue: make(chan *outMsg, queueSize), kick: func(err error) { a.kicked = err }}
	th.h.add(a.c)
	return a
}

// next returns the snapshot queued for the agent, nil if none (assignments
// are skipped).
func (a *testAgent) next() *hangarv1.Snapshot {
	if m := a.nextMsg(); m != nil {
		return m.msg.GetSnapshot()
	}
	return nil
}

func (a *testAgent) nextMsg() *outMsg {
	for {
		select {
		case m := <-a.c.queue:
			if m.msg.GetSnapshot() != nil {
				return m
			}
		default:
			return nil
		}
	}
}

// apply applies the queued snapshot and ACKs it (NACKs it if it does not
// apply); it returns what was sent.
func (a *testAgent) apply() *hangarv1.Snapshot {
	a.th.t.Helper()
	s := a.next()
	if s == nil {
		a.th.t.Fatalf("%s: nothing queued", a.c.id)
	}
	state, err := snapshot.Apply(a.state, s)
	if err != nil {
		a.th.h.nack(a.c, s.GetVersion(), err.Error())
		return s
	}
	a.state = state
	if a.th.h.ack(a.c, s.GetVersion()) {
		a.th.h.push(a.c, nil, false)
	}
	return s
}

func ids[T interface{ GetId() string }](xs []T) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, x.GetId())
	}
	slices.Sort(out)
	return out
}

// shape is what a snapshot carries, by id.
type shape struct {
	Delta                         bool
	Base                          uint64
	Config                        bool
	Groups, Servers               []string
	RemovedGroups, RemovedServers []string
}

func shapeOf(s *hangarv1.Snapshot) shape {
	return shape{Delta: s.GetDelta(), Base: s.GetBaseVersion(), Config: len(s.GetFleetConfig()) > 0,
		Groups: ids(s.GetGroups()), Servers: ids(s.GetServers()),
		RemovedGroups: sorted(s.GetRemovedGroups()), RemovedServers: sorted(s.GetRemovedServers())}
}

func sorted(xs []string) []string {
	return append([]string{}, slices.Sorted(slices.Values(xs))...)
}

func wantShape(t *testing.T, what string, s *hangarv1.Snapshot, want shape) {
	t.Helper()
	if s == nil {
		t.Fatalf("%s: nothing sent, want %+v", what, want)
	}
	for _, p := range []*[]string{&want.Groups, &want.Servers, &want.RemovedGroups, &want.RemovedServers} {
		if *p == nil {
			*p = []string{}
		}
	}
	if diff := cmp.Diff(want, shapeOf(s)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestDeltaCarriesOnlyWhatChangedForTheAgent(t *testing.T) {
	th := newTestHub(t)
	f := baseFleet()
	v1 := th.decide(f)
	a := th.connect("a", &hangarv1.Hello{Groups: []string{"g1"}})
	b := th.connect("b", &hangarv1.Hello{Groups: []string{"g2", "g3"}})
	wantShape(t, "a's first snapshot", a.apply(), shape{Config: true, Groups: []string{"g1"}, Servers: []string{"a", "b"}})
	wantShape(t, "b's first snapshot", b.apply(), shape{Config: true, Groups: []string{"g2", "g3"}, Servers: []string{"c", "d", "e", "f"}})

	// A member of g1 is ejected: a gets g1 and the member; b the version.
	f = f.with(func(f *fleet) { f.ejected["a"] = true })
	v2 := th.decide(f)
	wantShape(t, "ejection in g1, to a", a.apply(), shape{Delta: true, Base: v1, Groups: []string{"g1"}, Servers: []string{"a"}})
	wantShape(t, "ejection in g1, to b", b.apply(), shape{Delta: true, Base: v1})

	// A member of g2 is ejected.
	f = f.with(func(f *fleet) { f.ejected["c"] = true })
	v3 := th.decide(f)
	wantShape(t, "ejection in g2, to b", b.apply(), shape{Delta: true, Base: v2, Groups: []string{"g2"}, Servers: []string{"c"}})
	wantShape(t, "ejection in g2, to a", a.apply(), shape{Delta: true, Base: v2})

	// The fleet file changes: a member added to g1, one removed from g2,
	// g3 removed, g4 added. Everyone gets the file once.
	f = f.with(func(f *fleet) {
		f.file = "v2"
		f.groups["g1"] = append(f.groups["g1"], "x")
		f.groups["g2"] = []string{"c"}
		delete(f.groups, "g3")
		f.groups["g4"] = []string{"y"}
	})
	th.decide(f)
	wantShape(t, "file change, to a", a.apply(), shape{Delta: true, Base: v3, Config: true, Groups: []string{"g1"}, Servers: []string{"x"}})
	wantShape(t, "file change, to b", b.apply(), shape{Delta: true, Base: v3, Config: true, Groups: []string{"g2"},
		RemovedGroups: []string{"g3"}, RemovedServers: []string{"d", "e", "f"}})

	// The same decision again: the version alone, without the file.
	f = f.with(func(f *fleet) {})
	v5 := th.decide(f)
	wantShape(t, "an unchanged decision", a.apply(), shape{Delta: true, Base: v5 - 1})
	// What the agents hold is what a full snapshot of the latest gives.
	for _, ag := range []*testAgent{a, b} {
		v := th.h.latest.Load()
		full := v.full(ag.c.sync.sub.resolve(v), false, true).msg.GetSnapshot()
		if diff := cmp.Diff(ids(full.GetGroups()), ids(ag.state.GetGroups())); diff != "" {
			t.Errorf("%s holds other groups than a full snapshot (-full +held):\n%s", ag.c.id, diff)
		}
		if !proto.Equal(&hangarv1.Snapshot{Groups: sortGroups(full.GetGroups())}, &hangarv1.Snapshot{Groups: sortGroups(ag.state.GetGroups())}) {
			t.Errorf("%s holds other states than a full snapshot", ag.c.id)
		}
	}
}

func sortGroups(gs []*hangarv1.GroupState) []*hangarv1.GroupState {
	out := slices.Clone(gs)
	slices.SortFunc(out, func(a, b *hangarv1.GroupState) int {
		if a.GetId() < b.GetId() {
			return -1
		}
		if a.GetId() > b.GetId() {
			return 1
		}
		return 0
	})
	return out
}

func TestSameChangeSharesOneEncodedMessage(t *testing.T) {
	th := newTestHub(t)
	f := baseFleet()
	th.decide(f)
	a := th.connect("a", &hangarv1.Hello{Groups: []string{"g1", "g2"}})
	b := th.connect("b", &hangarv1.Hello{Groups: []string{"g1", "g3"}})
	a.apply()
	b.apply()
	th.decide(f.with(func(f *fleet) { f.ejected["b"] = true }))
	ma, mb := a.nextMsg(), b.nextMsg()
	if ma == nil || ma != mb {
		t.Errorf("agents with different groups got the same change as two messages: %v, %v", ma.msg, mb.msg)
	}
	if ma.size > 1024 {
		t.Errorf("an ejection's delta is %d bytes, want ≤ 1 KiB", ma.size)
	}
}

func TestNackedDeltaGetsAFullSnapshot(t *testing.T) {
	th := newTestHub(t)
	f := baseFleet()
	th.decide(f)
	a := th.connect("a", &hangarv1.Hello{Groups: []string{"g1"}})
	a.apply()
	v2 := th.decide(f.with(func(f *fleet) { f.ejected["a"] = true }))
	a.state.Version = 99 // the agent lost track: the delta does not apply
	if s := a.apply(); !s.GetDelta() {
		t.Fatalf("first push after the ejection is %+v, want a delta", shapeOf(s))
	}
	s := a.apply()
	wantShape(t, "after the NACKed delta", s, shape{Config: true, Groups: []string{"g1"}, Servers: []string{"a", "b"}})
	if s.GetVersion() != v2 || a.state.GetVersion() != v2 {
		t.Errorf("resent version %d, agent runs %d; want %d", s.GetVersion(), a.state.GetVersion(), v2)
	}

	// A NACKed full snapshot with the file is parked: not resent.
	th.h.nack(a.c, v2, "refused") // not in flight: ignored
	v3 := th.decide(f)
	if s := a.next(); !s.GetDelta() {
		t.Fatalf("push of %d is %+v, want a delta", v3, shapeOf(s))
	}
	th.h.nack(a.c, v3, "refused")
	wantShape(t, "after the NACKed delta", a.next(), shape{Config: true, Groups: []string{"g1"}, Servers: []string{"a", "b"}})
	th.h.nack(a.c, v3, "refused")
	if s := a.next(); s != nil {
		t.Errorf("a NACKed full snapshot was resent: %+v", shapeOf(s))
	}
	// A later version is sent: a delta against what the agent runs (v2).
	th.decide(f.with(func(f *fleet) { f.ejected["b"] = true }))
	// (The file goes along: after the NACKs the hub no longer trusts that
	// the agent holds it.)
	wantShape(t, "the next version", a.apply(), shape{Delta: true, Base: v2, Config: true, Groups: []string{"g1"}, Servers: []string{"a", "b"}})
}

func TestReconnectWithTheCurrentHashSkipsTheFile(t *testing.T) {
	th := newTestHub(t)
	f := baseFleet()
	th.decide(f)
	hash := th.h.latest.Load().hash
	a := th.connect("a", &hangarv1.Hello{Groups: []string{"g1"}, ConfigHash: hash})
	wantShape(t, "current hash", a.next(), shape{Groups: []string{"g1"}, Servers: []string{"a", "b"}})
	b := th.connect("b", &hangarv1.Hello{Groups: []string{"g1"}, ConfigHash: "0ld"})
	wantShape(t, "stale hash", b.next(), shape{Config: true, Groups: []string{"g1"}, Servers: []string{"a", "b"}})
}

func TestSubscriptions(t *testing.T) {
	th := newTestHub(t)
	th.decide(baseFleet())
	all := th.connect("all", &hangarv1.Hello{})
	wantShape(t, "no groups, no servers: every group", all.apply(), shape{Config: true, Groups: []string{"g1", "g2", "g3"},
		Servers: []string{"a", "b", "c", "d", "e", "f"}})
	local := th.connect("local", &hangarv1.Hello{Servers: []string{"c", "d"}})
	wantShape(t, "servers c, d: their group", local.apply(), shape{Config: true, Groups: []string{"g2"}, Servers: []string{"c", "d"}})

	// local calls g3: from then on it gets g3 too.
	th.h.called(local.c, &hangarv1.Report{Groups: []*hangarv1.GroupReport{{Group: "g1"}, {Group: "g3", LastCall: nowTS()}}})
	wantShape(t, "after a call to g3", local.apply(), shape{Delta: true, Base: 1, Groups: []string{"g3"}, Servers: []string{"e", "f"}})
	th.h.called(local.c, &hangarv1.Report{Groups: []*hangarv1.GroupReport{{Group: "g3", LastCall: nowTS()}}})
	if s := local.next(); s != nil {
		t.Errorf("a second call to g3 sent %+v", shapeOf(s))
	}
}

func TestAgentTooFarBehindIsDisconnected(t *testing.T) {
	th := newTestHub(t)
	f := baseFleet()
	th.decide(f)
	a := th.connect("a", &hangarv1.Hello{})
	a.next() // read, never ACKed
	a.c.mu.Lock()
	a.c.sync.sentAt = a.c.sync.sentAt.Add(-slowAfter) // and left unACKed that long
	a.c.mu.Unlock()
	for i := range queueSize {
		f = f.with(func(f *fleet) { f.ejected["a"] = i%2 == 0 })
		th.decide(f)
	}
	if a.kicked != errSlowAgent {
		t.Errorf("an agent that ACKed none of %d versions in %s: kicked %v, want %v", queueSize, slowAfter, a.kicked, errSlowAgent)
	}

	// The same versions with the snapshot in flight for less: not slow.
	b := th.connect("b", &hangarv1.Hello{})
	b.next()
	for i := range queueSize {
		f = f.with(func(f *fleet) { f.ejected["a"] = i%2 == 0 })
		th.decide(f)
	}
	if b.kicked != nil {
		t.Errorf("an agent with a snapshot in flight for under %s was kicked: %v", slowAfter, b.kicked)
	}
}

// TestDeltasMakeTheFullState checks random decision sequences: whatever
// an agent misses or NACKs, the state it holds is the full snapshot of the
// latest version for its groups.
func TestDeltasMakeTheFullState(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	members := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for round := range 50 {
		th := newTestHub(t)
		f := baseFleet()
		th.decide(f)
		var agents []*testAgent
		for i := range 4 {
			hello := &hangarv1.Hello{}
			switch i {
			case 1:
				hello.Groups = []string{"g1"}
			case 2:
				hello.Groups = []string{"g2", "g4"}
			case 3:
				hello.Servers = []string{"a", "e"}
			}
			agents = append(agents, th.connect(fmt.Sprint(i), hello))
		}
		for range 30 {
			f = f.with(func(f *fleet) {
				switch rng.IntN(4) {
				case 0:
					m := members[rng.IntN(len(members))]
					f.ejected[m] = !f.ejected[m]
				case 1:
					g := fmt.Sprintf("g%d", 1+rng.IntN(5))
					f.groups[g] = []string{members[rng.IntN(len(members))], members[rng.IntN(len(members))]}
					f.file = fmt.Sprint(rng.Int())
				case 2:
					delete(f.groups, fmt.Sprintf("g%d", 1+rng.IntN(5)))
					f.file = fmt.Sprint(rng.Int())
				}
			})
			th.decide(f)
			for _, a := range agents {
				if rng.IntN(3) > 0 {
					for a.pending() {
						a.apply()
					}
				}
			}
		}
		for _, a := range agents {
			for a.pending() {
				a.apply()
			}
			v := th.h.latest.Load()
			sub := a.c.sync.sub
			full := v.full(sub.resolve(v), sub.all, true).msg.GetSnapshot()
			got, want := sortGroups(a.state.GetGroups()), sortGroups(full.GetGroups())
			if diff := cmp.Diff(want, got, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("round %d, agent %s: held groups differ from a full snapshot (-full +held):\n%s", round, a.c.id, diff)
			}
			if diff := cmp.Diff(ids(full.GetServers()), ids(a.state.GetServers())); diff != "" {
				t.Fatalf("round %d, agent %s: held servers differ (-full +held):\n%s", round, a.c.id, diff)
			}
			if string(a.state.GetFleetConfig()) != f.file {
				t.Fatalf("round %d, agent %s: holds fleet file %q, want %q", round, a.c.id, a.state.GetFleetConfig(), f.file)
			}
		}
	}
}

// pending reports whether a snapshot is queued for the agent.
func (a *testAgent) pending() bool {
	for {
		select {
		case m := <-a.c.queue:
			if m.msg.GetSnapshot() != nil {
				// Put it back at the front: the queue holds only it now.
				a.c.queue <- m
				return true
			}
		default:
			return false
		}
	}
}

func nowTS() *timestamppb.Timestamp { return timestamppb.Now() }
