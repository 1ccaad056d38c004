package snapshot

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

func group(id string, rotation ...string) *hangarv1.GroupState {
	return &hangarv1.GroupState{Id: id, Rotation: rotation}
}

func TestApply(t *testing.T) {
	full := &hangarv1.Snapshot{Version: 5, FleetConfig: []byte("file"), ConfigHash: "h1",
		Groups:  []*hangarv1.GroupState{group("g1", "a", "b"), group("g2", "c"), group("g3", "e")},
		Servers: []*hangarv1.ServerState{{Id: "a"}, {Id: "b"}, {Id: "c"}, {Id: "e"}}}
	held, err := Apply(nil, full)
	if err != nil {
		t.Fatal(err)
	}
	delta := &hangarv1.Snapshot{Version: 7, BaseVersion: 5, Delta: true, ConfigHash: "h1",
		Groups: []*hangarv1.GroupState{group("g1", "b"), group("g4", "x")}, RemovedGroups: []string{"g2"},
		Servers: []*hangarv1.ServerState{{Id: "a", Reason: "probers"}, {Id: "x"}}, RemovedServers: []string{"c"}}
	got, err := Apply(held, delta)
	if err != nil {
		t.Fatal(err)
	}
	want := &hangarv1.Snapshot{Version: 7, FleetConfig: []byte("file"), ConfigHash: "h1",
		Groups:  []*hangarv1.GroupState{group("g1", "b"), group("g3", "e"), group("g4", "x")},
		Servers: []*hangarv1.ServerState{{Id: "a", Reason: "probers"}, {Id: "b"}, {Id: "e"}, {Id: "x"}}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("delta applied (-want +got):\n%s", diff)
	}
	if len(held.GetGroups()) != 3 || held.GetVersion() != 5 {
		t.Errorf("Apply changed the state it was given: %v", held)
	}

	for name, bad := range map[string]*hangarv1.Snapshot{
		"delta against another version":  {Version: 8, BaseVersion: 6, Delta: true, ConfigHash: "h1"},
		"delta without a held state":     nil,
		"new file hash without the file": {Version: 8, BaseVersion: 7, Delta: true, ConfigHash: "h2"},
	} {
		cur := got
		if bad == nil {
			cur, bad = nil, &hangarv1.Snapshot{Version: 8, BaseVersion: 7, Delta: true}
		}
		if _, err := Apply(cur, bad); !errors.Is(err, ErrBase) {
			t.Errorf("%s: err %v, want ErrBase", name, err)
		}
	}
	// A full snapshot without the file, of the hash held, keeps the file.
	if s, err := Apply(got, &hangarv1.Snapshot{Version: 9, ConfigHash: "h1"}); err != nil || string(s.GetFleetConfig()) != "file" {
		t.Errorf("full snapshot of the same hash: %v, %v; want the held file kept", s, err)
	}
}
