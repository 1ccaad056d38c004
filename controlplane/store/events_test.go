package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hangarmesh/hangar/internal/clock"
)

func TestEventsBoundedAndOrdered(t *testing.T) {
	const limit, each = 10, 15
	base, n := newStore(t)
	ctx := ctxFor(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// Two writers, as two replicas, each with its own client.
	writers := []*Store{base, New(newClient(t, n), "")}
	for _, w := range writers {
		w.EventLimit = limit
		w.Clock = clock.NewFake(now) // stamps only: no watch restarts here
	}

	all := watch(t, func(ctx context.Context) <-chan Event { return base.WatchEvents(ctx, 0) })
	seqs := make([][]uint64, len(writers))
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			for j := range each {
				e, err := w.AppendEvent(ctx, Event{Kind: "failover", Group: "g", Server: fmt.Sprint(i), Message: fmt.Sprint(j)})
				if err != nil {
					t.Error(err)
					return
				}
				seqs[i] = append(seqs[i], e.Seq)
			}
		})
	}
	wg.Wait()
	var merged []uint64
	for i, s := range seqs {
		if !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != len(s) {
			t.Errorf("writer %d got seqs %v, want strictly increasing", i, s)
		}
		merged = append(merged, s...)
	}
	slices.Sort(merged)
	for i, seq := range merged {
		if seq != uint64(i+1) {
			t.Fatalf("seqs of both writers = %v, want 1..%d each once", merged, 2*each)
		}
	}

	kept, err := base.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != limit || kept[0].Seq != 2*each-limit+1 || kept[limit-1].Seq != 2*each {
		t.Fatalf("Events() kept %d events %d..%d, want %d..%d", len(kept), kept[0].Seq, kept[len(kept)-1].Seq, 2*each-limit+1, 2*each)
	}
	if e := kept[0]; !e.Time.Equal(now) || e.Kind != "failover" || e.Group != "g" {
		t.Errorf("stored event = %+v", e)
	}
	if page, err := base.Events(ctx, 25, 2); err != nil || len(page) != 2 || page[0].Seq != 26 || page[1].Seq != 27 {
		t.Errorf("Events(25, 2) = %+v, %v; want seqs 26, 27", page, err)
	}

	// A watcher that read nothing while the events were written gets them
	// in order.
	var last uint64
	for last < 2*each {
		e := recv(t, all)
		if e.Seq <= last {
			t.Fatalf("WatchEvents sent seq %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
	tail := watch(t, func(ctx context.Context) <-chan Event { return base.WatchEvents(ctx, 2*each-2) })
	e, err := writers[1].AppendEvent(ctx, Event{Kind: "failback", Time: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{2*each - 1, 2 * each, e.Seq} {
		if got := recv(t, tail); got.Seq != want {
			t.Fatalf("WatchEvents(%d) sent seq %d, want %d", 2*each-2, got.Seq, want)
		}
	}
	if got := recv(t, all); got.Seq != e.Seq || got.Kind != "failback" || !got.Time.Equal(now.Add(time.Hour)) {
		t.Fatalf("WatchEvents(0) sent %+v, want the failback event %d with its own time", got, e.Seq)
	}
}
