package picker

import (
	"slices"
	"testing"
)

// A peer that chokes us gives blocks only of the pieces it allowed (BEP 6), due ones first,
// and stays choked for the rest of the picker.
func TestPickAllowedFast(t *testing.T) {
	p := newTest(t, 8)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	if got := p.PickAllowedFast(1, 10, t0); len(got) != 0 {
		t.Fatalf("picked %v with nothing allowed", got)
	}
	p.PeerAllowedFast(1, 2)
	p.PeerAllowedFast(1, 5)
	p.PeerAllowedFast(1, 99) // out of range: ignored
	p.SetWants(1, []Want{{First: 5, Last: 6, Due: t0}})
	got := p.PickAllowedFast(1, 16, t0)
	if ps := pieces(got); !slices.Equal(ps, []int{5, 2}) {
		t.Fatalf("picked pieces %v, want the due allowed piece 5 then 2 (6 is due but not allowed)", ps)
	}
	if len(got) != 8 {
		t.Fatalf("picked %d blocks, want both allowed pieces' 8", len(got))
	}
	if !p.peers[1].choked {
		t.Fatal("PickAllowedFast unchoked the peer")
	}
	// Once it unchokes us, the other pieces come through Pick as usual.
	p.PeerUnchoked(1)
	if ps := pieces(p.Pick(1, 4, t0)); !slices.Equal(ps, []int{6}) {
		t.Fatalf("Pick after unchoke: pieces %v, want 6", ps)
	}
}
