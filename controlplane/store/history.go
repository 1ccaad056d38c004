package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/internal/fleetfile"
)

// dirConfigHistory keeps a copy of every stored fleet file, written in the
// same transaction as the config key (so it has the config's revision).
const dirConfigHistory = "confighistory/"

// HistoryLimit is how many stored fleet files the history keeps.
const HistoryLimit = 20

// ConfigMeta says who stored a fleet file, for its history entry.
type ConfigMeta struct {
	By   string // "the admin token", "--fleet-config of replica r1"
	Name string // the file name it came from
}

// ConfigRevision is one entry of the config history.
type ConfigRevision struct {
	Rev  int64     `json:"-"`
	Time time.Time `json:"time"`
	By   string    `json:"by,omitempty"`
	Name string    `json:"name,omitempty"`
	SHA  string    `json:"sha256"`
	Data []byte    `json:"config"`
}

// historyPut is the history entry's put for yaml, to add to the
// transaction that stores it.
func (s *Store) historyPut(yaml []byte, meta ConfigMeta) clientv3.Op {
	now := s.now().UTC()
	e := ConfigRevision{Time: now, By: meta.By, Name: meta.Name, SHA: fleetfile.Hash(yaml), Data: yaml}
	data, _ := json.Marshal(e) // plain fields: cannot fail
	return clientv3.OpPut(s.key(fmt.Sprintf("%s%020d", dirConfigHistory, now.UnixNano())), string(data))
}

// ConfigHistory returns the kept fleet files, newest first.
func (s *Store) ConfigHistory(ctx context.Context) ([]ConfigRevision, error) {
	resp, err := s.cli.Get(ctx, s.key(dirConfigHistory), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list config history: %w", err)
	}
	out := make([]ConfigRevision, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e ConfigRevision
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			continue
		}
		e.Rev = kv.ModRevision
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ConfigRevision) int { return cmp.Compare(b.Rev, a.Rev) })
	return out, nil
}

// trimHistory deletes the entries beyond HistoryLimit; best effort.
func (s *Store) trimHistory(ctx context.Context) {
	resp, err := s.cli.Get(ctx, s.key(dirConfigHistory), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil || len(resp.Kvs) <= HistoryLimit {
		return
	}
	for _, kv := range resp.Kvs[:len(resp.Kvs)-HistoryLimit] {
		if !strings.HasPrefix(string(kv.Key), s.key(dirConfigHistory)) {
			continue
		}
		if _, err := s.cli.Delete(ctx, string(kv.Key)); err != nil {
			return
		}
	}
}
