package picker

import (
	"testing"
	"time"
)

// pull has peer 1 deliver at once whatever it is asked for, asking every 10 ms for up to
// 64 blocks, for d from start; it returns the blocks asked and the time after.
func pull(p *Picker, start time.Time, d time.Duration) (int, time.Time) {
	n, now := 0, start
	for ; now.Before(start.Add(d)); now = now.Add(10 * time.Millisecond) {
		for _, b := range p.Pick(1, 64, now) {
			n++
			p.Received(1, b, now)
		}
	}
	return n, now
}

// TestPacedWhileAReaderIsAbout: while a reader is about and no read waits, a peer is
// asked for paceShare of its capacity, however fast it delivers, and its capacity is not
// lowered by the pacing; the blocks a read waits for are not paced; without a reader
// about, or with reads that take what we download, it is asked for all it delivers.
func TestPacedWhileAReaderIsAbout(t *testing.T) {
	p := newTest(t, 4000) // 64,000 blocks: the background never runs out here
	seeders(p, 1)         // capacity 1 MiB/s: 64 blocks a second
	p.SetViewing(true)

	unpaced, now := pull(p, t0, time.Second)
	if unpaced < 500 {
		t.Fatalf("no reader about: %d blocks asked in a second of a peer that delivers at once, want hundreds", unpaced)
	}

	p.SetPaced(true)
	n, now := pull(p, now, 2*time.Second)
	want := paceShare * 2 * (1 << 20) / BlockSize // 102 blocks
	if float64(n) < want-8 || float64(n) > want+8 {
		t.Fatalf("paced: %d blocks in 2 s, want about %.0f (%.0f%% of 1 MiB/s)", n, want, paceShare*100)
	}
	// The rate measured meanwhile is what the pacing allowed: the capacity stays.
	p.PeerRate(1, paceShare*(1<<20))
	n, now = pull(p, now, 2*time.Second)
	if float64(n) < want-8 {
		t.Fatalf("paced after a tick measured the paced rate: %d blocks in 2 s, want about %.0f", n, want)
	}

	// A read waits for piece 3000: its blocks are not paced (nor are they behind the
	// pacing's bucket, which is empty now).
	p.SetWaited(func(i int) bool { return i == 3000 })
	p.SetWants(7, []Want{{First: 3000, Last: 3000, Due: now}})
	got := p.Pick(1, 64, now)
	if len(got) < 4 || pieces(got)[0] != 3000 {
		t.Fatalf("a read waits for piece 3000: picked pieces %v, want its 4 blocks first", pieces(got))
	}
	for _, b := range got {
		p.Received(1, b, now)
	}
	p.SetWaited(nil)
	p.SetWants(7, nil)

	// Reads that take what we download (a copy) are not paced.
	p.SetPressing(true)
	if n, _ = pull(p, now, time.Second); float64(n) < 2*want {
		t.Fatalf("pressing reads: %d blocks asked in a second, want well over the paced %.0f", n, want/2)
	}
}

// TestPaceSparesUnmeasuredPeer: a peer whose capacity is not measured yet is not held back
// by the pacing.
func TestPaceSparesUnmeasuredPeer(t *testing.T) {
	p := pacedUnmeasured(t, 100)
	if got := p.Pick(1, 8, t0); len(got) == 0 {
		t.Fatal("a peer not measured yet got nothing while paced")
	}
}

// TestWindowTailFeedsASlowStartingPeer: while reads press (a copy), a peer that share
// passes over for the window's front (its rate not measured yet: a far seeder in TCP's
// slow start) fills its pipeline from the window's end, last piece first; a viewer's
// reads that do not press leave it the few background requests they always did.
func TestWindowTailFeedsASlowStartingPeer(t *testing.T) {
	for _, pressing := range []bool{false, true} {
		p := newTest(t, 100) // pieces of 4 blocks
		seeders(p, 1)        // peer 1: near and measured, 1 MiB/s
		p.PeerRate(1, 4<<20)
		p.PeerAdd(2) // peer 2: just unchoked us, nothing measured
		p.PeerHaveAll(2)
		p.PeerUnchoked(2)
		p.SetPressing(pressing)
		// A read at piece 0, the window to piece 79 due at 1 MiB/s: piece k at k/16 s.
		ws := make([]Want, 80)
		for k := range ws {
			ws[k] = Want{First: k, Last: k, Due: t0.Add(time.Duration(k) * time.Second / 16)}
		}
		p.SetWants(7, ws)
		front := p.Pick(1, 64, t0)
		if len(front) != 64 || pieces(front)[0] != 0 {
			t.Fatalf("pressing %v: the measured peer got pieces %v, want the window's front", pressing, pieces(front))
		}
		got := p.Pick(2, 32, t0)
		if !pressing {
			if len(got) > streamingBackground {
				t.Fatalf("reads not pressing: the unmeasured peer got %d blocks (pieces %v), want at most %d", len(got), pieces(got), streamingBackground)
			}
			continue
		}
		if len(got) != 32 {
			t.Fatalf("pressing: the unmeasured peer got %d blocks, want its whole pipeline of 32", len(got))
		}
		if ps := pieces(got); ps[0] != 79 || ps[len(ps)-1] != 72 {
			t.Fatalf("pressing: the unmeasured peer got pieces %v, want 79 down to 72", ps)
		}
	}
}

// TestWindowTailOnlyWhatComesInTime: a measured slow peer takes from the window's end
// only the pieces it delivers, behind its queue, well before they are due.
func TestWindowTailOnlyWhatComesInTime(t *testing.T) {
	p := newTest(t, 100) // pieces of 4 blocks
	seeders(p, 2)
	p.PeerRate(1, 4<<20)
	p.PeerRate(2, 64<<10) // 4 blocks a second
	p.SetPressing(true)
	ws := make([]Want, 80)
	for k := range ws {
		ws[k] = Want{First: k, Last: k, Due: t0.Add(time.Duration(k) * time.Second / 16)}
	}
	p.SetWants(7, ws)
	if got := p.Pick(1, 64, t0); len(got) != 64 {
		t.Fatalf("the fast peer got %d blocks, want 64", len(got))
	}
	// Piece 79 (due in 4.94 s) comes in 1 s, 78 (4.88 s) in 2 s, 77 (4.81 s) in 3 s:
	// with half a second to spare and half again as long, only 79 and 78 fit.
	// (Its share of the window's front, where it finishes a block first, comes before.)
	var tail []Block
	for _, b := range p.Pick(2, 32, t0) {
		if b.Piece >= 64 {
			tail = append(tail, b)
		}
	}
	if ps := pieces(tail); len(tail) != 8 || len(ps) != 2 || ps[0] != 79 || ps[1] != 78 {
		t.Fatalf("the slow peer got %d blocks of the window's end, of pieces %v; want the 8 of pieces 79 and 78", len(tail), ps)
	}
}

// TestCopyOnlyWhereItPays: in a copy (reads press), a block of the piece a read is blocked
// on is asked of a second peer only if that peer would deliver it before its holder is
// expected to, or once the holder is late; a viewer's blocked read copies it at once.
func TestCopyOnlyWhereItPays(t *testing.T) {
	for _, pressing := range []bool{false, true} {
		p := newTest(t, 100) // pieces of 4 blocks
		seeders(p, 2)
		p.PeerRate(1, 4<<20)  // 256 blocks a second
		p.PeerRate(2, 64<<10) // 4 blocks a second
		p.SetPressing(pressing)
		p.SetWants(7, []Want{{First: 0, Last: 0, Due: t0}})
		if got := p.Pick(1, 4, t0); len(got) != 4 || pieces(got)[0] != 0 {
			t.Fatalf("pressing %v: the fast peer got pieces %v, want piece 0's 4 blocks", pressing, pieces(got))
		}
		n := piece0Copies(p, t0.Add(10*time.Millisecond))
		if !pressing {
			if n != 4 {
				t.Fatalf("a viewer blocked on piece 0: the slow peer copied %d of its blocks, want 4", n)
			}
			continue
		}
		// The fast peer delivers all four within 16 ms; the slow one would take 250 ms.
		if n != 0 {
			t.Fatalf("a copy blocked on piece 0: the slow peer copied %d of its blocks, which the fast one delivers first", n)
		}
		// 16 ms + copyLate later the fast peer is late: then the blocks are copied.
		if n := piece0Copies(p, t0.Add(20*time.Millisecond+copyLate)); n != 4 {
			t.Fatalf("a copy blocked on piece 0, its holder late: the slow peer copied %d of its blocks, want 4", n)
		}
	}

	// A read that has waited copyPatience takes copies whatever the estimates say (a
	// fresh mount's peers, in slow start): here the holder, at half a block a second, is
	// not late for any block yet, and the other peer would be slower still.
	p := newTest(t, 100)
	seeders(p, 2)
	p.PeerRate(1, 8<<10)
	p.PeerRate(2, 1<<10)
	p.SetPressing(true)
	p.SetWants(7, []Want{{First: 0, Last: 0, Due: t0}})
	if got := p.Pick(1, 4, t0); len(got) != 4 {
		t.Fatalf("the holder got %d blocks, want piece 0's 4", len(got))
	}
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{10 * time.Millisecond, 0}, {copyPatience + 10*time.Millisecond, 4}} {
		if n := piece0Copies(p, t0.Add(c.after)); n != c.want {
			t.Errorf("a copy blocked on piece 0 for %v, its holder not late: %d blocks copied, want %d", c.after, n, c.want)
		}
	}

	// Before a peer's rate is measured (a fresh mount's first second, where reads that
	// wait press), its estimate comes from a placeholder rate. A peer that has answered
	// (a round trip measured) or is reserved copies at once: seeders that send in quota
	// ticks answer whenever their turn comes. One not heard from yet waits.
	for _, c := range []struct {
		name     string
		rtt      time.Duration
		reserved bool
		want     int
	}{
		{"answered", time.Millisecond, false, 4},
		{"reserved", 0, true, 4},
		{"not heard from", 0, false, 0},
	} {
		p = newTest(t, 100)
		seeders(p, 2)
		p.PeerRate(1, 4<<20)
		p.PeerRate(2, 0)
		p.peers[2].rtt = c.rtt
		if c.reserved {
			p.SetReserved(2, true)
		}
		p.SetPressing(true)
		p.SetWants(7, []Want{{First: 0, Last: 0, Due: t0}})
		if got := p.Pick(1, 4, t0); len(got) != 4 {
			t.Fatalf("the holder got %d blocks, want piece 0's 4", len(got))
		}
		if n := piece0Copies(p, t0.Add(10*time.Millisecond)); n != c.want {
			t.Errorf("a peer with no rate measured, %s, a read blocked on piece 0 while reads press: %d blocks copied, want %d", c.name, n, c.want)
		}
	}
}

// piece0Copies is how many blocks of piece 0 peer 2 is asked for at now (up to 8 picked).
func piece0Copies(p *Picker, now time.Time) (n int) {
	for _, b := range p.Pick(2, 8, now) {
		if b.Piece == 0 {
			n++
		}
	}
	return n
}

// TestCapacityUnhindered: the capacity the pacing works from is known once two ticks
// after a connection's first agree, the peer neither held back nor reserved in them: a
// libtorrent seeder's first second (the quota it lends ahead), a far seeder's TCP slow
// start, or a tick with a seek's burst in it would have it paced too high or too low. A
// peer is not paced before its capacity is known.
func TestCapacityUnhindered(t *testing.T) {
	p := pacedUnmeasured(t, 4000)
	now := t0
	// The first second (what the seeder lent ahead), then a slow start.
	for _, r := range []int{3 << 20, 1 << 20, 2 << 20} {
		p.PeerRate(1, float64(r))
		var n int
		if n, now = pull(p, now, time.Second); n < 500 {
			t.Fatalf("after a tick at %d KiB/s: %d blocks asked in a second, want no pacing yet", r>>10, n)
		}
	}
	p.PeerRate(1, 2.2*(1<<20))
	n, now := pull(p, now, 2*time.Second)
	want := paceShare * 2 * 2.2 * (1 << 20) / BlockSize // 141
	if float64(n) < want-8 || float64(n) > want+8 {
		t.Fatalf("rates 3, 1, 2, 2.2 MiB/s: %d blocks in 2 s, want about %.0f (paced to half of 2.2 MiB/s)", n, want)
	}
	// A tick with a seek's burst in it while the pacing held the peer back, then one
	// while it was reserved: neither moves the capacity.
	p.PeerRate(1, 4<<20)
	for _, b := range p.SetReserved(1, true) {
		p.Cancelled(1, b)
	}
	p.PeerRate(1, 16<<10)
	p.SetReserved(1, false)
	if n, _ = pull(p, now, 2*time.Second); float64(n) < want-8 || float64(n) > want+8 {
		t.Fatalf("after a burst while held back and a trickle while reserved: %d blocks in 2 s, want about %.0f", n, want)
	}
}

// pacedUnmeasured is a picker of n pieces, paced for a viewer, with one seeder (peer 1)
// that has unchoked us and whose rate is not measured yet.
func pacedUnmeasured(t *testing.T, n int) *Picker {
	p := newTest(t, n)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.PeerUnchoked(1)
	p.SetViewing(true)
	p.SetPaced(true)
	return p
}

// TestCopyByThePeerThatSends: a block of a piece a read is blocked on, held by maxCopies
// peers none of which has sent anything since it was asked, gets one more copy from a
// peer that has sent us a block since (rate-limited libtorrent seeders send only at their
// quota ticks: the one with quota left must not sit idle while the read waits for the
// others' next tick). Not when a holder has sent something since it was asked.
func TestCopyByThePeerThatSends(t *testing.T) {
	for _, holderSent := range []bool{false, true} {
		p := newTest(t, 100) // pieces of 4 blocks
		seeders(p, 4)
		for id := PeerID(1); id <= 4; id++ {
			p.PeerRate(id, 0) // a fresh mount: no rate measured
		}
		p.SetWants(7, []Want{{First: 0, Last: 0, Due: t0}})
		mine := p.Pick(1, 1, t0)
		if len(mine) != 1 || mine[0].Piece != 0 {
			t.Fatalf("peer 1 got %v, want a block of piece 0", mine)
		}
		for id := PeerID(2); id <= 4; id++ {
			p.Pick(id, 8, t0.Add(time.Millisecond)) // copies are for a read already waiting
		}
		full := 0
		for bi := range p.partial[0].blocks {
			bs := &p.partial[0].blocks[bi]
			if !bs.got && int(bs.n) == maxCopies && bs.holds(2) {
				full++
			}
		}
		if full == 0 {
			t.Fatal("no block of piece 0 is held by maxCopies peers, peer 2 among them: the set-up tests nothing")
		}
		now := t0.Add(2 * time.Millisecond)
		if holderSent {
			// Peer 2, which was asked for a copy of peer 1's block, sends it first.
			if k, _ := p.key(mine[0]); !p.partial[0].blocks[k.block].holds(2) {
				t.Fatal("peer 2 holds no copy of peer 1's block: the set-up tests nothing")
			}
			if _, _, ok := p.Received(2, mine[0], now); !ok {
				t.Fatal("peer 2's block was not taken")
			}
		}
		p.Received(1, mine[0], now)
		// Peer 1 may copy every missing block but, when peer 2 sent, those it holds with
		// maxCopies-1 others.
		want := 0
		for bi := range p.partial[0].blocks {
			bs := &p.partial[0].blocks[bi]
			if !bs.got && !(holderSent && int(bs.n) == maxCopies && bs.holds(2)) {
				want++
			}
		}
		got := 0
		for _, b := range p.Pick(1, 8, now.Add(time.Millisecond)) {
			if b.Piece == 0 {
				got++
			}
		}
		if got != want {
			t.Errorf("peer 2 sent a block since: %v; peer 1, which sent its block, copied %d of piece 0's blocks, want %d", holderSent, got, want)
		}
	}
}
