package picker

import (
	"testing"
	"time"
)

// TestReservedPeer: a reserved peer loses its background requests, gets no background
// beyond a trickle of one block per reserveTrickle, and serves a piece a reader is blocked
// on: a copy of every block other peers hold, past maxCopies.
func TestReservedPeer(t *testing.T) {
	p := newTest(t, 20)
	seeders(p, 5)
	now := t0
	if got := p.Pick(1, 8, now); len(got) != 8 {
		t.Fatalf("background pick: %d blocks, want 8", len(got))
	}
	cancelled := p.SetReserved(1, true)
	if len(cancelled) != 8 {
		t.Fatalf("reserving returned %d background requests to cancel, want 8", len(cancelled))
	}
	for _, b := range cancelled {
		p.Cancelled(1, b)
	}
	if !p.Reserved(1) || p.Reserved(2) {
		t.Fatal("Reserved does not tell the reserved peer")
	}
	// Nothing due: one trickle block, then none until reserveTrickle has passed.
	if got := p.Pick(1, 8, now); len(got) != 1 {
		t.Fatalf("reserved peer, nothing due: %d blocks, want the 1 trickle block", len(got))
	} else {
		p.Cancelled(1, got[0])
	}
	if got := p.Pick(1, 8, now.Add(reserveTrickle/2)); len(got) != 0 {
		t.Fatalf("reserved peer within reserveTrickle: %d blocks, want 0", len(got))
	}
	if got := p.Pick(1, 8, now.Add(reserveTrickle)); len(got) != 1 {
		t.Fatalf("reserved peer after reserveTrickle: %d blocks, want 1", len(got))
	} else {
		p.Cancelled(1, got[0])
	}
	// A read blocks on piece 15: peers 2-4 get its blocks first, three copies each.
	now = now.Add(time.Second)
	p.SetWants(100, []Want{{First: 15, Last: 15, Due: now}})
	now = now.Add(time.Millisecond) // overdue: a reader is blocked
	copies := map[int]int{}         // block begin -> peers asked
	for id := PeerID(2); id <= 4; id++ {
		for _, b := range p.Pick(id, 16, now) {
			if b.Piece == 15 {
				copies[b.Begin]++
			}
		}
	}
	if len(copies) == 0 {
		t.Fatal("peers 2-4 got nothing of the blocking piece 15")
	}
	// Make every block held maxCopies times, as a blocked read's duplicates end up.
	for id := PeerID(2); id <= 5; id++ {
		for range 4 {
			for _, b := range p.Pick(id, 16, now) {
				if b.Piece == 15 {
					copies[b.Begin]++
				}
			}
		}
	}
	full := 0
	for _, n := range copies {
		if n > maxCopies {
			t.Fatalf("an unreserved peer took a copy past maxCopies: %v", copies)
		}
		if n == maxCopies {
			full++
		}
	}
	got := p.Pick(1, 8, now)
	if len(got) != 4 {
		t.Fatalf("reserved peer, piece 15 blocking, copies %v: %d blocks %v, want all 4", copies, len(got), got)
	}
	for _, b := range got {
		if b.Piece != 15 {
			t.Fatalf("reserved peer got piece %d", b.Piece)
		}
	}
	if full == 0 {
		t.Logf("no block of piece 15 reached maxCopies: the past-maxCopies rule went untested; copies %v", copies)
	}
	// Unreserved, with the read done, it takes background again.
	p.ClearWants(100)
	p.SetReserved(1, false)
	if got := p.Pick(1, 8, now); len(got) == 0 {
		t.Fatal("unreserved peer gets no background")
	}
}

// TestReservedPeerStaysNear: with no read blocked, a reserved peer takes only pieces due
// within reserveAhead; while a read is blocked it works ahead with the others, and
// TrimReserved takes that readahead back once no read is blocked.
func TestReservedPeerStaysNear(t *testing.T) {
	p := newTest(t, 20)
	seeders(p, 3)
	p.SetBackground(false)
	p.SetReserved(1, true)
	now := t0
	// A viewer's readahead, nothing blocked: pieces 5 and 6 due in 1 and 2 s.
	p.SetWants(100, []Want{{First: 5, Last: 5, Due: now.Add(time.Second)}, {First: 6, Last: 6, Due: now.Add(2 * time.Second)}})
	if got := p.Pick(1, 64, now); len(got) != 0 {
		t.Fatalf("reserved peer, nothing due within reserveAhead: %d blocks %v, want none", len(got), got)
	}
	// Piece 4 blocks a read: the reserved peer takes it and works ahead.
	p.SetWants(101, []Want{{First: 4, Last: 4, Due: now}})
	now = now.Add(time.Millisecond)
	p.Pick(2, 8, now)
	p.Pick(3, 8, now)
	pieces := map[int]int{}
	for _, b := range p.Pick(1, 64, now) {
		pieces[b.Piece]++
	}
	if pieces[4] == 0 || pieces[5] == 0 {
		t.Fatalf("reserved peer, piece 4 blocking: took %v, want 4 and the readahead after it", pieces)
	}
	if got := p.TrimReserved(now); len(got) != 0 {
		t.Fatalf("TrimReserved while a read is blocked: %v", got)
	}
	// The read is done: what the reserved peer holds of pieces 5 and 6 goes back.
	p.ClearWants(101)
	trimmed := p.TrimReserved(now)
	if len(trimmed) != pieces[5]+pieces[6] {
		t.Fatalf("TrimReserved returned %d requests, want the %d of pieces 5 and 6", len(trimmed), pieces[5]+pieces[6])
	}
	for _, r := range trimmed {
		if r.Peer != 1 || r.Block.Piece < 5 {
			t.Fatalf("TrimReserved returned %+v", r)
		}
	}
	if n := p.Outstanding(1); n != 0 {
		t.Fatalf("reserved peer still has %d requests out", n)
	}
	// Those blocks are free again for the other peers.
	if got := p.Pick(2, 64, now); len(got) == 0 {
		t.Fatal("the trimmed readahead went to no other peer")
	}
}

// seeders adds peers 1..n, each with every piece, unchoking us at 1 MiB/s, measured over
// the ticks that make that its capacity (updateCapacity).
func seeders(p *Picker, n int) {
	for id := PeerID(1); id <= PeerID(n); id++ {
		p.PeerAdd(id)
		p.PeerHaveAll(id)
		p.PeerUnchoked(id)
		for range capacityTicks {
			p.PeerRate(id, 1<<20)
		}
	}
}
