package swarm

import (
	"math/rand/v2"
	"sort"
)

// chokeCandidate is what the choker knows of one connected peer at a choking round.
type chokeCandidate struct {
	key        int
	interested bool // the peer wants data from us
	snubbed    bool // it has sent us nothing for a long time while we wanted data
	// rate is what ranks peers: the rate at which the peer gives us data while we download
	// (tit-for-tat), the rate at which we upload to it while we seed (so the fastest
	// downloaders get our bandwidth).
	rate float64
	// fresh peers connected within the last few rounds; they get three times the chance of
	// the optimistic slot, so a newcomer with nothing to trade can get its first pieces.
	fresh bool
}

// choker decides which peers we upload to: regular slots go to the best interested peers
// by rate every round (10 s), one optimistic slot rotates every third round (30 s) to a
// random choked peer so we discover better partners. Pure logic: the run loop calls it with
// the current peers and applies the answer; it keeps only the optimistic choice between
// rounds.
type choker struct {
	slots      int
	round      int
	optimistic int // key of the optimistic unchoke, -1 when none
	rng        *rand.Rand
}

func newChoker(slots int, seed uint64) *choker {
	return &choker{slots: slots, optimistic: -1, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// decide returns the set of keys to unchoke this round.
func (c *choker) decide(cands []chokeCandidate) map[int]bool {
	c.round++
	rotate := c.round%3 == 1 // the first round picks one at once

	byRate := make([]chokeCandidate, 0, len(cands))
	present := false
	for _, p := range cands {
		if p.key == c.optimistic {
			present = p.interested
		}
		// Snubbed peers lose their regular slot (anti-snubbing); they can still win the
		// optimistic one.
		if p.interested && !p.snubbed {
			byRate = append(byRate, p)
		}
	}
	if !present {
		c.optimistic, rotate = -1, true
	}
	sort.SliceStable(byRate, func(i, j int) bool { return byRate[i].rate > byRate[j].rate })

	unchoke := make(map[int]bool, c.slots+1)
	for _, p := range byRate {
		if len(unchoke) == c.slots {
			break
		}
		unchoke[p.key] = true
	}
	if rotate || unchoke[c.optimistic] {
		c.optimistic = c.pickOptimistic(cands, unchoke)
	}
	if c.optimistic >= 0 {
		unchoke[c.optimistic] = true
	}
	return unchoke
}

func (c *choker) pickOptimistic(cands []chokeCandidate, regular map[int]bool) int {
	var pool []int
	for _, p := range cands {
		if !p.interested || regular[p.key] {
			continue
		}
		pool = append(pool, p.key)
		if p.fresh {
			pool = append(pool, p.key, p.key)
		}
	}
	if len(pool) == 0 {
		return -1
	}
	return pool[c.rng.IntN(len(pool))]
}
