package picker

import "math/rand/v2"

// rarity holds the candidate pieces in buckets by availability, so that the rarest piece a
// peer has is found by scanning from the lowest bucket instead of over every piece, and an
// availability change costs O(1). Inside a bucket the order is random: a piece entering a
// bucket swaps places with a random member, which is the random tie-break of rarest-first.
type rarity struct {
	buckets [][]int32
	pos     []int32 // index of the piece in its bucket; -1 when not a candidate
}

func (r *rarity) init(n int) {
	r.pos = make([]int32, n)
	for i := range r.pos {
		r.pos[i] = -1
	}
}

func (r *rarity) contains(i int) bool { return r.pos[i] >= 0 }

func (r *rarity) bucket(a int) *[]int32 {
	for len(r.buckets) <= a {
		r.buckets = append(r.buckets, nil)
	}
	return &r.buckets[a]
}

// push appends piece i to bucket a without shuffling (the caller already chose the order).
func (r *rarity) push(i, a int) {
	b := r.bucket(a)
	r.pos[i] = int32(len(*b))
	*b = append(*b, int32(i))
}

// insert adds piece i to bucket a at a random place.
func (r *rarity) insert(i, a int, rng *rand.Rand) {
	r.push(i, a)
	b := *r.bucket(a)
	j := rng.IntN(len(b))
	last := len(b) - 1
	b[j], b[last] = b[last], b[j]
	r.pos[b[j]] = int32(j)
	r.pos[b[last]] = int32(last)
}

// remove takes piece i out of bucket a.
func (r *rarity) remove(i, a int) {
	b := r.bucket(a)
	k := r.pos[i]
	last := int32(len(*b) - 1)
	moved := (*b)[last]
	(*b)[k] = moved
	r.pos[moved] = k
	*b = (*b)[:last]
	r.pos[i] = -1
}

// move shifts a candidate piece from bucket from to bucket to.
func (r *rarity) move(i, from, to int, rng *rand.Rand) {
	if !r.contains(i) {
		return
	}
	r.remove(i, from)
	r.insert(i, to, rng)
}

// size is the number of candidates with availability at least from.
func (r *rarity) size(from int) int {
	n := 0
	for a := from; a < len(r.buckets); a++ {
		n += len(r.buckets[a])
	}
	return n
}
