package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// PutReport stores a replica's summary of its agents' reports under the
// replica's session lease. Callers write on change only: every put wakes
// every WatchReports.
func (s *Store) PutReport(ctx context.Context, sess *concurrency.Session, replica string, data []byte) error {
	if err := checkName("replica", replica); err != nil {
		return err
	}
	if err := putLeased(ctx, sess, s.key(dirReports+replica), data); err != nil {
		return fmt.Errorf("put report of %q: %w", replica, err)
	}
	return nil
}

// WatchReports sends the full map replica → report now and after every
// change, including a replica's report vanishing with its session.
func (s *Store) WatchReports(ctx context.Context) <-chan map[string][]byte {
	out := make(chan map[string][]byte)
	go func() {
		defer close(out)
		s.followPrefix(ctx, dirReports, func(m map[string][]byte) bool { return send(ctx, out, m) })
	}()
	return out
}

// Reports returns every replica's current report, by key.
func (s *Store) Reports(ctx context.Context) (map[string][]byte, error) {
	return s.list(ctx, dirReports)
}

// Drain takes a member out of its group's rotation until Undrain. Draining a
// drained member is a no-op apart from its time. The names are not checked
// against the fleet file: that is the caller's job.
func (s *Store) Drain(ctx context.Context, group, member string) error {
	k, err := s.drainKey(group, member)
	if err != nil {
		return err
	}
	if _, err := s.cli.Put(ctx, k, s.now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("drain %s/%s: %w", group, member, err)
	}
	return nil
}

// Undrain puts a drained member back; undraining a member that is not
// drained is a no-op.
func (s *Store) Undrain(ctx context.Context, group, member string) error {
	k, err := s.drainKey(group, member)
	if err != nil {
		return err
	}
	if _, err := s.cli.Delete(ctx, k); err != nil {
		return fmt.Errorf("undrain %s/%s: %w", group, member, err)
	}
	return nil
}

func (s *Store) drainKey(group, member string) (string, error) {
	if err := checkName("group", group); err != nil {
		return "", err
	}
	if err := checkName("member", member); err != nil {
		return "", err
	}
	return s.key(dirDrain + group + "/" + member), nil
}

// Drained returns the drained members by group, each list sorted. Groups
// without drained members are absent.
func (s *Store) Drained(ctx context.Context) (map[string][]string, error) {
	m, err := s.list(ctx, dirDrain)
	if err != nil {
		return nil, fmt.Errorf("list drains: %w", err)
	}
	return drained(m), nil
}

// WatchDrained sends the drained members by group now and after every change.
func (s *Store) WatchDrained(ctx context.Context) <-chan map[string][]string {
	out := make(chan map[string][]string)
	go func() {
		defer close(out)
		s.followPrefix(ctx, dirDrain, func(m map[string][]byte) bool { return send(ctx, out, drained(m)) })
	}()
	return out
}

// drained turns "group/member" keys into sorted member lists by group.
func drained(m map[string][]byte) map[string][]string {
	out := make(map[string][]string)
	for k := range m {
		group, member, ok := strings.Cut(k, "/")
		if !ok {
			continue // not written by Drain
		}
		out[group] = append(out[group], member)
	}
	for _, members := range out {
		slices.Sort(members)
	}
	return out
}
