package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hangarmesh/hangar/internal/backoff"
)

// DefaultEventLimit is how many events the log keeps when EventLimit is 0.
const DefaultEventLimit = 1000

// Event is one entry of the domain event log (a state change an operator
// reads with hangarctl events).
type Event struct {
	// Seq orders the log: 1 for the first event ever, +1 for each next one,
	// across all replicas. Assigned by AppendEvent.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is the stable snake_case event name, as in the logs
	// ("member_out_of_rotation", "circuit_opened", "failover", ...).
	Kind    string `json:"kind"`
	Group   string `json:"group,omitempty"`
	Server  string `json:"server,omitempty"`
	Message string `json:"message,omitempty"`
}

func (s *Store) eventKey(seq uint64) string { return s.key(fmt.Sprintf("%s%020d", dirEvents, seq)) }

func (s *Store) eventLimit() uint64 {
	if s.EventLimit > 0 {
		return uint64(s.EventLimit)
	}
	return DefaultEventLimit
}

// AppendEvent adds e to the log with the next Seq, and Time set to Now() if
// it is zero, and deletes the events beyond EventLimit, oldest first, in the
// same transaction. Concurrent writers (on any replica) get distinct,
// increasing Seqs. It returns the event as stored.
func (s *Store) AppendEvent(ctx context.Context, e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC()
	seqKey := s.key(keyEventSeq)
	for {
		resp, err := s.cli.Get(ctx, seqKey)
		if err != nil {
			return Event{}, fmt.Errorf("append event: read seq: %w", err)
		}
		var seq uint64
		var modRev int64
		if len(resp.Kvs) > 0 {
			modRev = resp.Kvs[0].ModRevision
			if seq, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64); err != nil {
				return Event{}, fmt.Errorf("append event: key %s holds %q, not a number: %w", seqKey, resp.Kvs[0].Value, err)
			}
		}
		e.Seq = seq + 1
		data, err := json.Marshal(e)
		if err != nil {
			return Event{}, fmt.Errorf("append event: %w", err)
		}
		ops := []clientv3.Op{
			clientv3.OpPut(seqKey, strconv.FormatUint(e.Seq, 10)),
			clientv3.OpPut(s.eventKey(e.Seq), string(data)),
		}
		if limit := s.eventLimit(); e.Seq > limit {
			// Keep seqs e.Seq-limit+1 … e.Seq.
			ops = append(ops, clientv3.OpDelete(s.key(dirEvents), clientv3.WithRange(s.eventKey(e.Seq-limit+1))))
		}
		tresp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(seqKey), "=", modRev)).
			Then(ops...).
			Commit()
		if err != nil {
			return Event{}, fmt.Errorf("append event: %w", err)
		}
		if tresp.Succeeded {
			return e, nil
		}
		// Another writer took this seq: read the counter again.
	}
}

// Events returns up to limit events with Seq > after, oldest first; limit <= 0
// means all that are kept.
func (s *Store) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.key(dirEvents)))}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, s.eventKey(after+1), opts...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	events := make([]Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := decodeEvent(kv.Key, kv.Value)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

func decodeEvent(key, val []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(val, &e); err != nil {
		return Event{}, fmt.Errorf("decode event %s: %w", key, err)
	}
	return e, nil
}

// WatchEvents sends the kept events with Seq > after, then every new one, in
// Seq order. Events deleted (beyond EventLimit) before they were sent are
// skipped; an undecodable event is logged and skipped.
func (s *Store) WatchEvents(ctx context.Context, after uint64) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		last := after
		deliver := func(key, val []byte) bool {
			e, err := decodeEvent(key, val)
			if err != nil {
				s.log().Warn("store_event_skipped", "err", err)
				return true
			}
			if e.Seq <= last {
				return true
			}
			last = e.Seq
			return send(ctx, out, e)
		}
		pfx := s.key(dirEvents)
		s.follow(ctx, pfx, func(ctx context.Context, b *backoff.Backoff) error {
			resp, err := s.cli.Get(ctx, s.eventKey(last+1), clientv3.WithRange(clientv3.GetPrefixRangeEnd(pfx)))
			if err != nil {
				return err
			}
			b.Reset()
			for _, kv := range resp.Kvs {
				if !deliver(kv.Key, kv.Value) {
					return ctx.Err()
				}
			}
			wch, cancel := s.watch(ctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterDelete())
			defer cancel()
			for wr := range wch {
				if err := wr.Err(); err != nil {
					return err
				}
				for _, ev := range wr.Events {
					if !deliver(ev.Kv.Key, ev.Kv.Value) {
						return ctx.Err()
					}
				}
			}
			return errWatchClosed
		})
	}()
	return out
}
