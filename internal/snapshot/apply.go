// Package snapshot applies the control plane's snapshots and deltas to the
// state an agent holds (docs/design.md §4.1): the one place that knows
// how a delta changes a full snapshot, shared by the agent and the
// simulated agents of tests and benchmarks.
package snapshot

import (
	"errors"
	"fmt"

	hangarv1 "github.com/hangarmesh/hangar/proto/hangar/v1"
)

// ErrBase marks a delta whose base is not the snapshot the agent holds, or
// a snapshot that lacks the fleet file the agent does not have: the agent
// NACKs it and the control plane answers with a full snapshot.
var ErrBase = errors.New("snapshot: does not apply to the state held")

// Apply returns the full state that s makes of cur (nil: the agent holds
// none). A full snapshot replaces cur; a delta replaces cur's servers and
// groups of the same ids, adds the new ones and drops the removed ones.
// Either keeps cur's fleet file when s carries none and the hashes match.
// Neither cur nor s is modified; the result shares their states.
func Apply(cur, s *hangarv1.Snapshot) (*hangarv1.Snapshot, error) {
	out := &hangarv1.Snapshot{Version: s.GetVersion(), Nonce: s.GetNonce(), Created: s.GetCreated(),
		FleetConfig: s.GetFleetConfig(), ConfigHash: s.GetConfigHash()}
	if len(out.FleetConfig) == 0 && out.ConfigHash != "" {
		if cur.GetConfigHash() != out.ConfigHash || len(cur.GetFleetConfig()) == 0 {
			return nil, fmt.Errorf("%w: snapshot %d refers to fleet file %.12s without carrying it, and the agent holds %q",
				ErrBase, s.GetVersion(), out.ConfigHash, short(cur.GetConfigHash()))
		}
		out.FleetConfig = cur.GetFleetConfig()
	}
	if !s.GetDelta() {
		out.Servers, out.Groups = s.GetServers(), s.GetGroups()
		return out, nil
	}
	if cur == nil || cur.GetVersion() != s.GetBaseVersion() {
		return nil, fmt.Errorf("%w: delta %d is against version %d, the agent runs %d",
			ErrBase, s.GetVersion(), s.GetBaseVersion(), cur.GetVersion())
	}
	out.Servers = merge(cur.GetServers(), s.GetServers(), s.GetRemovedServers(), (*hangarv1.ServerState).GetId)
	out.Groups = merge(cur.GetGroups(), s.GetGroups(), s.GetRemovedGroups(), (*hangarv1.GroupState).GetId)
	return out, nil
}

// merge returns cur with the entries of upd replacing those of the same id
// in place (new ones appended) and the ids in removed dropped.
func merge[T any](cur, upd []T, removed []string, id func(T) string) []T {
	drop := make(map[string]bool, len(removed))
	for _, r := range removed {
		drop[r] = true
	}
	byID := make(map[string]int, len(upd))
	for i, u := range upd {
		byID[id(u)] = i
	}
	used := make([]bool, len(upd))
	out := make([]T, 0, len(cur)+len(upd))
	for _, c := range cur {
		if i, ok := byID[id(c)]; ok {
			out, used[i] = append(out, upd[i]), true
		} else if !drop[id(c)] {
			out = append(out, c)
		}
	}
	for i, u := range upd {
		if !used[i] {
			out = append(out, u)
		}
	}
	return out
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
