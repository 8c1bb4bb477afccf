package picker

import (
	"testing"
	"time"
)

// The estimate is the request-to-block latency less the queue ahead at the peer's rate;
// a queue-inflated sample does not raise it, a slower path does after a window.
func TestRTTEstimate(t *testing.T) {
	p := newTest(t, 8)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	const rate = 1 << 20 // a block takes 15.6 ms
	p.PeerRate(1, rate)
	perBlock := time.Duration(float64(BlockSize) / rate * float64(time.Second))
	t0 := time.Unix(1000, 0)
	got := p.Pick(1, 8, t0)
	if len(got) != 8 {
		t.Fatalf("picked %d", len(got))
	}
	if p.RTT(1) != 0 {
		t.Fatal("an estimate before any block")
	}
	// Block k had k requests ahead of it: with a 50 ms path it lands at 50 ms + (k+1)
	// block times; the fourth one is held up 30 ms more by something else.
	for k, b := range got {
		at := t0.Add(50*time.Millisecond + time.Duration(k+1)*perBlock)
		if k == 3 {
			at = at.Add(30 * time.Millisecond)
		}
		p.Received(1, b, at)
	}
	if r := p.RTT(1); r < 49*time.Millisecond || r > 51*time.Millisecond {
		t.Errorf("RTT %v, want 50ms", r)
	}
	// The path slows to 120 ms: the old minimum holds for the rest of its window and the
	// next, then the new one shows.
	at := t0.Add(time.Second)
	for round := range 4 {
		bs := p.Pick(1, 1, at)
		if len(bs) != 1 {
			t.Fatalf("round %d: picked %d", round, len(bs))
		}
		p.Received(1, bs[0], at.Add(120*time.Millisecond+perBlock))
		at = at.Add(rttWindow)
	}
	if r := p.RTT(1); r < 119*time.Millisecond || r > 121*time.Millisecond {
		t.Errorf("RTT after the path slowed: %v, want 120ms", r)
	}
}

// Preferred blocks of a piece are requested before its lower ones.
func TestPreferBlocks(t *testing.T) {
	p := newTest(t, 4)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.SetWants(7, []Want{{First: 2, Last: 2, Due: time.Unix(1000, 0)}})
	p.PreferBlocks(2, 2, 3)
	got := p.Pick(1, 2, time.Unix(1000, 0))
	if len(got) != 2 || got[0].Piece != 2 || got[0].Begin != 2*BlockSize || got[1].Begin != 3*BlockSize {
		t.Fatalf("picked %+v, want blocks 2 and 3 of piece 2", got)
	}
	if more := p.Pick(1, 2, time.Unix(1000, 0)); len(more) != 2 || more[0].Begin != 0 || more[1].Begin != BlockSize {
		t.Errorf("then %+v, want blocks 0 and 1", more)
	}
}

// A due piece's blocks go to the peer that returns them first: with equal rates, a peer
// 200 ms away takes none while a near one could finish them all before its first arrives.
func TestDueBlocksPreferNearPeers(t *testing.T) {
	for _, far := range []time.Duration{0, 200 * time.Millisecond} {
		p := newTest(t, 4)
		now := time.Unix(1000, 0)
		for _, id := range []PeerID{1, 2} {
			p.PeerAdd(id)
			p.PeerHaveAll(id)
			p.PeerUnchoked(id)
			p.PeerRate(id, 1<<20)
		}
		p.peers[1].rtt = 10 * time.Millisecond
		p.peers[2].rtt = far
		p.SetWants(7, []Want{{First: 1, Last: 1, Due: now}})
		var got []Block                       // blocks of the due piece; background blocks may come too
		for _, b := range p.Pick(2, 4, now) { // the far peer asks first
			if b.Piece == 1 {
				got = append(got, b)
			}
		}
		switch {
		case far == 0 && len(got) == 0:
			t.Errorf("equally near peers: the asking one got no block of the due piece")
		case far > 0 && len(got) > 0:
			t.Errorf("a peer %v away took %d blocks of the due piece a near one returns sooner", far, len(got))
		}
	}
}

// A read over two pieces gets its blocks of both before the rest of the first.
func TestPreferBlocksAcrossPieces(t *testing.T) {
	p := newTest(t, 4)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	now := time.Unix(1000, 0)
	p.SetWants(7, []Want{{First: 1, Last: 2, Due: now}})
	p.PreferBlocks(1, 3, 3)
	p.PreferBlocks(2, 0, 0)
	got := p.Pick(1, 2, now)
	if len(got) != 2 || got[0].Piece != 1 || got[0].Begin != 3*BlockSize || got[1].Piece != 2 || got[1].Begin != 0 {
		t.Fatalf("picked %+v, want block 3 of piece 1 and block 0 of piece 2", got)
	}
}

// A piece already requested in block order when the read's blocks become known (a read
// head wanted it first): PreferBlocks hands back the requests for its other blocks to
// cancel, and the refill asks for the read's blocks first.
func TestPreferBlocksAfterRequests(t *testing.T) {
	p := newTest(t, 4)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	now := time.Unix(1000, 0)
	p.SetWants(7, []Want{{First: 2, Last: 2, Due: now}})
	first := p.Pick(1, 2, now)
	if len(first) != 2 || first[0].Piece != 2 || first[0].Begin != 0 || first[1].Begin != BlockSize {
		t.Fatalf("picked %+v, want blocks 0 and 1 of piece 2", first)
	}
	stale := p.PreferBlocks(2, 3, 3)
	if len(stale) != 2 || stale[0].Peer != 1 || stale[0].Block.Begin+stale[1].Block.Begin != BlockSize {
		t.Fatalf("PreferBlocks returned %+v, want the requests for blocks 0 and 1", stale)
	}
	for _, r := range stale {
		p.Cancelled(r.Peer, r.Block)
	}
	if got := p.Pick(1, 1, now); len(got) != 1 || got[0].Piece != 2 || got[0].Begin != 3*BlockSize {
		t.Fatalf("after the cancels picked %+v, want block 3 of piece 2", got)
	}
	// Once the read's block is in, nothing more is handed back.
	p.Received(1, Block{Piece: 2, Begin: 3 * BlockSize, Length: BlockSize}, now)
	if again := p.PreferBlocks(2, 3, 3); len(again) != 0 {
		t.Errorf("with the read's block in, PreferBlocks returned %+v", again)
	}
}

// A rate measured far below what the peer sends (a connection ramping up, a peer we pace)
// does not collapse the estimate: samples that would be mostly queue by that rate are not
// taken, and the path's 50 ms shows once the rate is measured right.
func TestRTTEstimateWithARateMeasuredLow(t *testing.T) {
	p := newTest(t, 8)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.PeerRate(1, 64<<10) // a block would take 250 ms; the peer sends one a millisecond
	t0 := time.Unix(1000, 0)
	for k, b := range p.Pick(1, 8, t0) {
		p.Received(1, b, t0.Add(50*time.Millisecond+time.Duration(k+1)*time.Millisecond))
	}
	if r := p.RTT(1); r != 0 && r < 40*time.Millisecond {
		t.Fatalf("RTT %v after samples read with a rate 16 times too low, want none or about 50ms", r)
	}
	p.PeerRate(1, 16<<20)
	at := t0.Add(time.Second)
	bs := p.Pick(1, 1, at)
	if len(bs) != 1 {
		t.Fatalf("picked %d", len(bs))
	}
	p.Received(1, bs[0], at.Add(51*time.Millisecond))
	if r := p.RTT(1); r < 49*time.Millisecond || r > 52*time.Millisecond {
		t.Errorf("RTT %v, want 50ms", r)
	}
}
