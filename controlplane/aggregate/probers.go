package aggregate

import "slices"

// Probers picks the n agents among candidates that probe member, by
// rendezvous (highest random weight) hashing: each candidate scores
// hash(member, agent) and the n highest scores win. The choice is stable:
// adding an agent moves only the slots it wins, removing one moves only the
// slots it held, and no assignment moves between the other agents.
//
// The score is FNV-1a 64 of member+"\x00"+agent, finished with MurmurHash3's
// 64-bit mixer so that ids differing in one character spread well; ties go to
// the smaller id. The result is sorted and holds min(n, distinct candidates)
// ids; duplicate candidates count once; n <= 0 or no candidates gives nil.
// Probers does not modify candidates.
func Probers(member string, candidates []string, n int) []string {
	if n <= 0 || len(candidates) == 0 {
		return nil
	}
	type scored struct {
		id    string
		score uint64
	}
	top := make([]scored, 0, min(n, len(candidates)))
	seed := fnvByte(fnvString(fnvOffset, member), 0)
	for _, c := range candidates {
		s := mix(fnvString(seed, c))
		i, dup := 0, false
		for ; i < len(top); i++ {
			if top[i].id == c {
				dup = true
				break
			}
			if s > top[i].score || s == top[i].score && c < top[i].id {
				break
			}
		}
		switch {
		case dup:
		case len(top) < cap(top):
			top = slices.Insert(top, i, scored{c, s})
		case i < len(top):
			copy(top[i+1:], top[i:len(top)-1])
			top[i] = scored{c, s}
		}
	}
	out := make([]string, len(top))
	for i, t := range top {
		out[i] = t.id
	}
	slices.Sort(out)
	return out
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

// mix is MurmurHash3's fmix64 finalizer.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb3f99fe53e87
	h ^= h >> 33
	return h
}
