package store

import (
	"context"
	"fmt"
	"math"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// dirConfirm holds the leader's confirmation probe requests (req/<id>) and
// the agents' answers (res/<id>) while they cross replicas: the leader asks
// an agent connected to another replica, that replica sends the probe and
// writes the agent's answer back.
const dirConfirm = "confirm/"

// PutConfirm writes a confirmation key (kind "req" or "res", then the
// request id) under a lease of its own that ends it after ttl (at least 1 s).
func (s *Store) PutConfirm(ctx context.Context, kind string, id uint64, data []byte, ttl time.Duration) error {
	if kind != "req" && kind != "res" {
		return fmt.Errorf("%w: confirmation key kind %q: want req or res", ErrBadName, kind)
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	if secs < 1 {
		secs = 1
	}
	lease, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return fmt.Errorf("grant confirmation lease: %w", err)
	}
	key := s.key(fmt.Sprintf("%s%s/%d", dirConfirm, kind, id))
	if _, err := s.cli.Put(ctx, key, string(data), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("put confirmation %s/%d: %w", kind, id, err)
	}
	return nil
}

// WatchConfirms sends the full map of confirmation keys ("req/<id>",
// "res/<id>") → value now and after every change.
func (s *Store) WatchConfirms(ctx context.Context) <-chan map[string][]byte {
	out := make(chan map[string][]byte)
	go func() {
		defer close(out)
		s.followPrefix(ctx, dirConfirm, func(m map[string][]byte) bool { return send(ctx, out, m) })
	}()
	return out
}

// Confirms returns the confirmation keys now held ("req/<id>", "res/<id>").
func (s *Store) Confirms(ctx context.Context) (map[string][]byte, error) {
	return s.list(ctx, dirConfirm)
}
