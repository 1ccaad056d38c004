package store

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/internal/backoff"
)

// Watch restarts back off from backoffMin to backoffMax.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
)

// newBackoff is the backoff between attempts at a watch, on the Store's
// clock; an attempt resets it after its initial read succeeded.
func (s *Store) newBackoff() *backoff.Backoff {
	return backoff.New(s.clock(), backoffMin, backoffMax, backoff.Equal)
}

var errWatchClosed = errors.New("watch channel closed")

// send delivers v unless ctx ends first.
func send[T any](ctx context.Context, out chan<- T, v T) bool {
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// follow runs one read-then-watch attempt after another until ctx ends or
// the client is closed. attempt returns once its watch fails; it resets the
// backoff after its initial read succeeded.
func (s *Store) follow(ctx context.Context, what string, attempt func(ctx context.Context, b *backoff.Backoff) error) {
	b := s.newBackoff()
	for ctx.Err() == nil && s.cli.Ctx().Err() == nil {
		err := attempt(ctx, b)
		if ctx.Err() != nil || s.cli.Ctx().Err() != nil {
			return
		}
		s.log().Info("store_watch_restarted", "watch", what, "err", err)
		if !b.Wait(ctx) {
			return
		}
	}
}

// watch opens a watch that requires an etcd leader (so a partitioned member
// fails it rather than going silent) and is cancelled by the returned func.
func (s *Store) watch(ctx context.Context, key string, opts ...clientv3.OpOption) (clientv3.WatchChan, context.CancelFunc) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	return s.cli.Watch(wctx, key, opts...), cancel
}

// watchValue sends key's value now (if set) and on every change, skipping
// revisions already sent. Deletions are not sent: Hangar never deletes the
// keys it watches this way.
func (s *Store) watchValue(ctx context.Context, key string) <-chan Versioned {
	out := make(chan Versioned)
	go func() {
		defer close(out)
		var last int64
		deliver := func(v Versioned) bool {
			if v.Rev <= last {
				return true
			}
			last = v.Rev
			return send(ctx, out, v)
		}
		s.follow(ctx, key, func(ctx context.Context, b *backoff.Backoff) error {
			resp, err := s.cli.Get(ctx, key)
			if err != nil {
				return err
			}
			b.Reset()
			if len(resp.Kvs) > 0 && !deliver(Versioned{Data: resp.Kvs[0].Value, Rev: resp.Kvs[0].ModRevision}) {
				return ctx.Err()
			}
			wch, cancel := s.watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterDelete())
			defer cancel()
			for wr := range wch {
				if err := wr.Err(); err != nil {
					return err
				}
				for _, ev := range wr.Events {
					if !deliver(Versioned{Data: ev.Kv.Value, Rev: ev.Kv.ModRevision}) {
						return ctx.Err()
					}
				}
			}
			return errWatchClosed
		})
	}()
	return out
}

// followPrefix calls emit with the full map (key under dir → value) now and
// after every change, until emit returns false, ctx ends or the client is
// closed. emit owns the map it is given.
func (s *Store) followPrefix(ctx context.Context, dir string, emit func(map[string][]byte) bool) {
	pfx := s.key(dir)
	var last map[string][]byte // last map emitted
	deliver := func(m map[string][]byte) bool {
		if last != nil && maps.EqualFunc(m, last, bytes.Equal) {
			return true
		}
		last = m
		return emit(maps.Clone(m))
	}
	s.follow(ctx, pfx, func(ctx context.Context, b *backoff.Backoff) error {
		resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix())
		if err != nil {
			return err
		}
		b.Reset()
		cur := make(map[string][]byte, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			cur[strings.TrimPrefix(string(kv.Key), pfx)] = kv.Value
		}
		if !deliver(cur) {
			return ctx.Err()
		}
		wch, cancel := s.watch(ctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		defer cancel()
		for wr := range wch {
			if err := wr.Err(); err != nil {
				return err
			}
			cur = maps.Clone(cur)
			for _, ev := range wr.Events {
				k := strings.TrimPrefix(string(ev.Kv.Key), pfx)
				if ev.Type == clientv3.EventTypeDelete {
					delete(cur, k)
				} else {
					cur[k] = ev.Kv.Value
				}
			}
			if !deliver(cur) {
				return ctx.Err()
			}
		}
		return errWatchClosed
	})
}
