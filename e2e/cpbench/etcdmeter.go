package cpbench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdMeter counts what the control plane puts to etcd, by kind of key
// (the first segment under /hangar/: reports, snapshot, agents, ...),
// from a watch on the whole prefix.
type etcdMeter struct {
	mu     sync.Mutex
	counts map[string]etcdCount
	done   chan struct{}
}

// etcdCount is the puts and their bytes (key and value) of one kind of key.
type etcdCount struct {
	Puts  int64 `json:"puts"`
	Bytes int64 `json:"bytes"`
}

// etcdWrites is what was put to etcd during a phase, per second.
type etcdWrites struct {
	Seconds     float64            `json:"seconds"`
	PutsPerSec  float64            `json:"puts_per_sec"`
	KiBPerSec   float64            `json:"kib_per_sec"`
	ByKind      map[string]float64 `json:"kib_per_sec_by_kind"`
	PutsByKind  map[string]float64 `json:"puts_per_sec_by_kind"`
	countsStart map[string]etcdCount
	start       time.Time
}

// startEtcdMeter watches every key under /hangar/ until ctx ends.
func startEtcdMeter(ctx context.Context, cli *clientv3.Client) *etcdMeter {
	m := &etcdMeter{counts: map[string]etcdCount{}, done: make(chan struct{})}
	wch := cli.Watch(ctx, "/hangar/", clientv3.WithPrefix())
	go func() {
		defer close(m.done)
		for wr := range wch {
			m.mu.Lock()
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				kind, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), "/hangar/"), "/")
				kind, _, _ = strings.Cut(kind, "#")
				c := m.counts[kind]
				c.Puts++
				c.Bytes += int64(len(ev.Kv.Key) + len(ev.Kv.Value))
				m.counts[kind] = c
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// begin starts a phase.
func (m *etcdMeter) begin() *etcdWrites {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &etcdWrites{countsStart: maps.Clone(m.counts), start: time.Now()}
}

// end closes the phase begun by w and fills in its rates.
func (m *etcdMeter) end(w *etcdWrites) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Seconds = time.Since(w.start).Seconds()
	w.ByKind, w.PutsByKind = map[string]float64{}, map[string]float64{}
	for kind, c := range m.counts {
		d := etcdCount{Puts: c.Puts - w.countsStart[kind].Puts, Bytes: c.Bytes - w.countsStart[kind].Bytes}
		if d.Puts == 0 {
			continue
		}
		w.PutsPerSec += float64(d.Puts) / w.Seconds
		w.KiBPerSec += float64(d.Bytes) / 1024 / w.Seconds
		w.ByKind[kind] = float64(d.Bytes) / 1024 / w.Seconds
		w.PutsByKind[kind] = float64(d.Puts) / w.Seconds
	}
}

func (w *etcdWrites) String() string {
	if w == nil {
		return "not measured"
	}
	kinds := slices.Sorted(maps.Keys(w.ByKind))
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.1f/s %.1f KiB/s", k, w.PutsByKind[k], w.ByKind[k]))
	}
	return fmt.Sprintf("%.1f puts/s, %.1f KiB/s (%s)", w.PutsPerSec, w.KiBPerSec, strings.Join(parts, "; "))
}
