// Package strategy orders a group's candidate members for one call: the
// first candidate is the member the call goes to, the rest are the order in
// which it fails over. The five strategies are those of the fleet file:
// priority, round_robin, weighted_round_robin, least_connections and random.
//
// Strategies do no I/O, logging or metrics, and are safe for concurrent use.
package strategy

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Candidate is a member that may receive the call.
type Candidate struct {
	// ID names the member; strategies that keep state per member key it by ID,
	// so IDs must be unique within one Order call.
	ID string
	// Priority orders the priority strategy: lower serves first (1..100).
	Priority int
	// Weight is the relative share under weighted_round_robin and random
	// (1..100); a weight below 1 counts as 1.
	Weight int
	// InFlight is the member's number of calls in progress, used by
	// least_connections.
	InFlight int
}

func (c Candidate) weight() int { return max(c.Weight, 1) }

// Strategy orders candidates for one call.
type Strategy interface {
	// Order returns the candidates in the order the call should try them:
	// the first is the pick, the rest are the failover order. It does not
	// modify cands; the returned slice is newly allocated and belongs to the
	// caller (nil when cands is empty). Order is safe for concurrent use.
	Order(cands []Candidate) []Candidate
}

// ErrUnknown is wrapped by the error New returns for an unknown name.
var ErrUnknown = errors.New("strategy: unknown name")

// New returns the strategy with the given fleet-file name. rnd is the
// randomness of the random strategy, which locks it while in use; nil means a
// source seeded randomly at start. Other strategies ignore rnd.
func New(name string, rnd *rand.Rand) (Strategy, error) {
	switch name {
	case "priority":
		return priority{}, nil
	case "round_robin":
		return &roundRobin{}, nil
	case "weighted_round_robin":
		return &weightedRoundRobin{current: make(map[string]int)}, nil
	case "least_connections":
		return &leastConnections{}, nil
	case "random":
		if rnd == nil {
			rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		}
		return &random{rnd: rnd}, nil
	}
	return nil, fmt.Errorf("%w %q: use one of priority, round_robin, weighted_round_robin, least_connections, random", ErrUnknown, name)
}

func clone(cands []Candidate) []Candidate {
	if len(cands) == 0 {
		return nil
	}
	return slices.Clone(cands)
}

// priority puts the lowest Priority first; equal priorities keep their input
// (config) order. Failover to a backup and failback to the primary follow
// from the candidate set alone.
type priority struct{}

func (priority) Order(cands []Candidate) []Candidate {
	out := clone(cands)
	slices.SortStableFunc(out, func(a, b Candidate) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}

// roundRobin starts each call one position further along the candidates and
// follows input order from there, wrapping around. The position is a call
// counter modulo the number of candidates, so a changing candidate set
// shifts it but keeps spreading calls evenly.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Order(cands []Candidate) []Candidate {
	n := len(cands)
	if n == 0 {
		return nil
	}
	start := int((r.next.Add(1) - 1) % uint64(n))
	out := make([]Candidate, n)
	copy(out, cands[start:])
	copy(out[n-start:], cands[:start])
	return out
}

// weightedRoundRobin is nginx's smooth weighted round robin: each call adds
// every candidate's weight to its current weight, picks the highest current
// weight (the first in input order on ties) and subtracts the total weight
// of the candidates from the pick. The rest follow by descending current
// weight, ties in input order. Current weights are kept per ID, so a member
// that leaves the candidate set keeps its place when it comes back; the map
// holds one entry per ID ever seen.
type weightedRoundRobin struct {
	mu      sync.Mutex
	current map[string]int
}

func (w *weightedRoundRobin) Order(cands []Candidate) []Candidate {
	out := clone(cands)
	if len(out) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	total, best, bestCur := 0, 0, 0
	for i, c := range out {
		total += c.weight()
		cur := w.current[c.ID] + c.weight()
		w.current[c.ID] = cur
		if i == 0 || cur > bestCur {
			best, bestCur = i, cur
		}
	}
	w.current[out[best].ID] -= total
	// Move the pick to the front, keeping the others in input order, then
	// sort them by descending current weight.
	pick := out[best]
	copy(out[1:best+1], out[:best])
	out[0] = pick
	slices.SortStableFunc(out[1:], func(a, b Candidate) int {
		return cmp.Compare(w.current[b.ID], w.current[a.ID])
	})
	return out
}

// leastConnections puts the lowest InFlight first. Candidates with equal
// InFlight are rotated by a call counter, so equal members share the load
// instead of the first one taking every call.
type leastConnections struct{ next atomic.Uint64 }

func (l *leastConnections) Order(cands []Candidate) []Candidate {
	out := clone(cands)
	if len(out) == 0 {
		return nil
	}
	turn := l.next.Add(1) - 1
	slices.SortStableFunc(out, func(a, b Candidate) int { return cmp.Compare(a.InFlight, b.InFlight) })
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].InFlight == out[i].InFlight {
			j++
		}
		rotate(out[i:j], int(turn%uint64(j-i)))
		i = j
	}
	return out
}

// rotate moves s[k] to the front, keeping cyclic order, without allocating.
func rotate(s []Candidate, k int) {
	if k == 0 {
		return
	}
	slices.Reverse(s[:k])
	slices.Reverse(s[k:])
	slices.Reverse(s)
}

// random picks the first candidate with probability proportional to its
// weight, then each next one the same way among those left.
type random struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func (r *random) Order(cands []Candidate) []Candidate {
	out := clone(cands)
	total := 0
	for _, c := range out {
		total += c.weight()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < len(out)-1; i++ {
		x := r.rnd.IntN(total)
		j := i
		for ; j < len(out)-1; j++ {
			x -= out[j].weight()
			if x < 0 {
				break
			}
		}
		total -= out[j].weight()
		out[i], out[j] = out[j], out[i]
	}
	return out
}
