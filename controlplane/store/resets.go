package store

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// dirResets holds one counter per group, resets/<group>: how many times an
// operator has reset the group's breaker. Agents close their local
// breakers when the count they see grows.
const dirResets = "resets/"

// ResetBreaker counts one more reset of group's breaker and returns the
// new count.
func (s *Store) ResetBreaker(ctx context.Context, group string) (uint64, error) {
	if err := checkName("group", group); err != nil {
		return 0, err
	}
	key := s.key(dirResets + group)
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("reset breaker of %s: %w", group, err)
		}
		var n uint64
		var rev int64
		if len(resp.Kvs) > 0 {
			n, _ = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
			rev = resp.Kvs[0].ModRevision
		}
		txn, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.FormatUint(n+1, 10))).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("reset breaker of %s: %w", group, err)
		}
		if txn.Succeeded {
			return n + 1, nil
		}
	}
}

// WatchBreakerResets sends the reset count of every group on every change,
// the current counts first.
func (s *Store) WatchBreakerResets(ctx context.Context) <-chan map[string]uint64 {
	out := make(chan map[string]uint64)
	go func() {
		defer close(out)
		s.followPrefix(ctx, dirResets, func(m map[string][]byte) bool {
			counts := make(map[string]uint64, len(m))
			for group, v := range m {
				counts[group], _ = strconv.ParseUint(string(v), 10, 64)
			}
			return send(ctx, out, counts)
		})
	}()
	return out
}
