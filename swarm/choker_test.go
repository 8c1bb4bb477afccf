package swarm

import "testing"

func TestChokerRegularSlotsGoToFastestInterested(t *testing.T) {
	c := newChoker(2, 1)
	got := c.decide([]chokeCandidate{
		{key: 1, interested: true, rate: 10},
		{key: 2, interested: true, rate: 30},
		{key: 3, interested: false, rate: 100}, // not interested: never unchoked
		{key: 4, interested: true, rate: 20},
		{key: 5, interested: true, rate: 50, snubbed: true}, // snubbed: no regular slot
	})
	if !got[2] || !got[4] {
		t.Fatalf("regular slots: got %v, want 2 and 4 among them", got)
	}
	if got[3] {
		t.Fatalf("uninterested peer unchoked: %v", got)
	}
	if len(got) != 3 {
		t.Fatalf("want 2 regular + 1 optimistic, got %v", got)
	}
	if c.optimistic != 1 && c.optimistic != 5 {
		t.Fatalf("optimistic %d is not a choked interested peer", c.optimistic)
	}
}

func TestChokerOptimisticRotatesEveryThirdRound(t *testing.T) {
	c := newChoker(1, 7)
	cands := []chokeCandidate{{key: 1, interested: true, rate: 100}}
	for k := 2; k <= 20; k++ {
		cands = append(cands, chokeCandidate{key: k, interested: true})
	}
	seen := map[int]bool{}
	prev := -1
	for round := 1; round <= 30; round++ {
		c.decide(cands)
		if c.optimistic <= 1 {
			t.Fatalf("round %d: optimistic %d", round, c.optimistic)
		}
		if round%3 != 1 && c.optimistic != prev {
			t.Fatalf("round %d: optimistic changed off-cycle (%d -> %d)", round, prev, c.optimistic)
		}
		prev = c.optimistic
		seen[c.optimistic] = true
	}
	if len(seen) < 3 {
		t.Fatalf("optimistic unchoke visited only %v in 10 rotations", seen)
	}
}

func TestChokerReplacesDepartedOptimistic(t *testing.T) {
	c := newChoker(1, 3)
	c.decide([]chokeCandidate{{key: 1, interested: true, rate: 5}, {key: 2, interested: true}})
	if c.optimistic != 2 {
		t.Fatalf("optimistic = %d, want 2", c.optimistic)
	}
	got := c.decide([]chokeCandidate{{key: 1, interested: true, rate: 5}, {key: 3, interested: true}})
	if c.optimistic != 3 || !got[3] {
		t.Fatalf("departed optimistic not replaced: optimistic %d, unchoked %v", c.optimistic, got)
	}
}
