package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/hangarmesh/hangar/internal/backoff"
)

// DefaultSessionTTL is the session TTL NewSession uses when given ttl <= 0.
const DefaultSessionTTL = 5 * time.Second

// resignTimeout bounds the resignation of a campaign that failed late.
const resignTimeout = 5 * time.Second

// NewSession grants a lease of ttl (rounded up to whole seconds, at least one;
// <= 0 means DefaultSessionTTL) and keeps it alive until the session is closed
// or its client is. ctx bounds only the grant. Each replica holds one session:
// its lease holds the replica's keys, which vanish within ttl of the
// replica's death. Close the session to revoke them at once.
func (s *Store) NewSession(ctx context.Context, ttl time.Duration) (*concurrency.Session, error) {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	secs := max(1, int64(math.Ceil(ttl.Seconds())))
	g, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("grant session lease: %w", err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(g.ID), concurrency.WithTTL(int(secs)))
	if err != nil {
		s.cli.Revoke(ctx, g.ID)
		return nil, fmt.Errorf("keep session lease alive: %w", err)
	}
	return sess, nil
}

// RegisterReplica advertises a replica's address under its session's lease.
func (s *Store) RegisterReplica(ctx context.Context, sess *concurrency.Session, name, addr string) error {
	if err := checkName("replica", name); err != nil {
		return err
	}
	if err := putLeased(ctx, sess, s.key(dirReplicas+name), []byte(addr)); err != nil {
		return fmt.Errorf("register replica %q: %w", name, err)
	}
	return nil
}

// Replicas returns the live replicas' addresses by name.
func (s *Store) Replicas(ctx context.Context) (map[string]string, error) {
	m, err := s.list(ctx, dirReplicas)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out, nil
}

// Leadership is held by the replica that won Campaign until Done is closed.
// Its methods are safe for concurrent use.
type Leadership struct {
	name string
	el   *concurrency.Election
	key  string // the election key that makes this replica the leader
	rev  int64  // and its create revision

	done chan struct{}      // closed when leadership is lost
	stop context.CancelFunc // ends watch; called by Resign
	mu   sync.Mutex         // serializes Resign: Election is not safe for concurrent use
}

// Name is the replica name the leader campaigned with.
func (l *Leadership) Name() string { return l.name }

// Done is closed when the leadership is lost: the session ended, the election
// key was deleted, the client was closed, or Resign was called. A replica
// must stop leader-only work then; PutSnapshot already refuses.
func (l *Leadership) Done() <-chan struct{} { return l.done }

// Resign gives up the leadership so another replica can win at once, and
// waits until Done is closed. Done is closed even if the deletion of the
// election key fails (it then expires with the session).
func (l *Leadership) Resign(ctx context.Context) error {
	l.mu.Lock()
	err := l.el.Resign(ctx)
	l.mu.Unlock()
	l.stop()
	<-l.done
	if err != nil {
		return fmt.Errorf("resign leadership of %q: %w", l.name, err)
	}
	return nil
}

// Campaign blocks until the session's replica is the leader, or ctx ends.
// The returned Leadership watches its election key until it is lost.
func (s *Store) Campaign(ctx context.Context, sess *concurrency.Session, name string) (*Leadership, error) {
	if err := checkName("replica", name); err != nil {
		return nil, err
	}
	select {
	case <-sess.Done():
		return nil, fmt.Errorf("campaign as %q: %w", name, ErrSessionExpired)
	default:
	}
	el := concurrency.NewElection(sess, s.key(dirElection))
	if err := el.Campaign(ctx, name); err != nil {
		return nil, fmt.Errorf("campaign as %q: %w", name, err)
	}
	l := &Leadership{name: name, el: el, key: el.Key(), rev: el.Rev(), done: make(chan struct{})}
	// The session may have expired while Campaign waited: check the key.
	rev, err := l.check(ctx, sess.Client())
	if err != nil {
		// ctx may be done: resign on the session's own time.
		rctx, cancel := context.WithTimeout(sess.Ctx(), resignTimeout)
		el.Resign(rctx)
		cancel()
		return nil, fmt.Errorf("campaign as %q: %w", name, err)
	}
	wctx, stop := context.WithCancel(sess.Ctx())
	l.stop = stop
	go l.watch(wctx, sess.Client(), rev, s.newBackoff())
	return l, nil
}

// check returns the current revision if the election key is still this
// leader's, ErrNotLeader otherwise.
func (l *Leadership) check(ctx context.Context, cli *clientv3.Client) (int64, error) {
	resp, err := cli.Get(ctx, l.key)
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != l.rev {
		return 0, ErrNotLeader
	}
	return resp.Header.Revision, nil
}

// watch closes done once the leadership is lost. Its context ends with the
// session (which ends with the client) or on Resign.
func (l *Leadership) watch(ctx context.Context, cli *clientv3.Client, rev int64, b *backoff.Backoff) {
	defer close(l.done)
	ctx = clientv3.WithRequireLeader(ctx)
	for ctx.Err() == nil {
		if l.deleted(ctx, cli, rev) {
			return
		}
		// The watch failed (compaction, lost etcd leader): still ours?
		for ctx.Err() == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			r, err := l.check(cctx, cli)
			cancel()
			if errors.Is(err, ErrNotLeader) {
				return
			}
			if err == nil {
				rev = r
				b.Reset()
				break
			}
			b.Wait(ctx)
		}
	}
}

// deleted watches the election key from rev+1; true once it is deleted,
// false when the watch fails.
func (l *Leadership) deleted(ctx context.Context, cli *clientv3.Client, rev int64) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range cli.Watch(ctx, l.key, clientv3.WithRev(rev+1), clientv3.WithFilterPut()) {
		if wr.Err() != nil {
			return false
		}
		if len(wr.Events) > 0 {
			return true
		}
	}
	return false
}

// Leader returns the current leader's name, "" when there is none.
func (s *Store) Leader(ctx context.Context) (string, error) {
	resp, err := s.cli.Get(ctx, s.key(dirElection)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("get leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// PutSnapshot stores the routing snapshot if l still leads and the bytes
// differ from the stored ones. It returns the snapshot's revision (its
// version): the new one when written, the current one otherwise. A deposed
// leader gets ErrNotLeader and writes nothing, even if it has not noticed yet.
func (s *Store) PutSnapshot(ctx context.Context, l *Leadership, data []byte) (rev int64, err error) {
	if l == nil {
		return 0, fmt.Errorf("put snapshot: %w", ErrNotLeader)
	}
	select {
	case <-l.done:
		return 0, fmt.Errorf("put snapshot as %q: %w", l.name, ErrNotLeader)
	default:
	}
	k := s.key(keySnapshot)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)).
		Then(clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", string(data))},
			[]clientv3.Op{clientv3.OpGet(k)},
			[]clientv3.Op{clientv3.OpPut(k, string(data))},
		)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("put snapshot: %w", err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("put snapshot as %q: %w", l.name, ErrNotLeader)
	}
	inner := resp.Responses[0].GetResponseTxn()
	if inner.Succeeded {
		return inner.Responses[0].GetResponseRange().Kvs[0].ModRevision, nil
	}
	return resp.Header.Revision, nil
}

// Snapshot returns the routing snapshot and its version; nil and 0 when none
// was written.
func (s *Store) Snapshot(ctx context.Context) (data []byte, rev int64, err error) {
	v, err := s.get(ctx, s.key(keySnapshot))
	if err != nil {
		return nil, 0, fmt.Errorf("get snapshot: %w", err)
	}
	return v.Data, v.Rev, nil
}

// WatchSnapshot sends the snapshot now (if any) and every new version, in
// order of version.
func (s *Store) WatchSnapshot(ctx context.Context) <-chan Versioned {
	return s.watchValue(ctx, s.key(keySnapshot))
}
