package picker

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"torrentfs/bitfield"
)

const kib = 1 << 10

// randomPeers returns n peers each having a fraction of the pieces; piece i is also given to
// peer i%n so that every piece exists somewhere.
func randomPeers(seed uint64, n, pieces int, frac float64, rate float64) []*simPeer {
	rng := rand.New(rand.NewPCG(seed, 1))
	var ps []*simPeer
	for k := range n {
		bf := bitfield.New(pieces)
		for i := range pieces {
			if i%n == k || rng.Float64() < frac {
				bf.Set(i)
			}
		}
		ps = append(ps, &simPeer{id: PeerID(k + 1), has: bf, rate: rate * (0.5 + rng.Float64()),
			latency: time.Duration(5+rng.IntN(50)) * time.Millisecond})
	}
	return ps
}

// (a) Every piece completes exactly once; requests only go to peers having the piece and
// never exceed the pipeline (asserted by sim.send and sim.fill on every request).
func TestSimCompletes(t *testing.T) {
	tests := []struct {
		name     string
		pieceLen int64
		total    int64
		peers    func(pieces int) []*simPeer
		failOnce []int
	}{
		{"seeds", 256 * kib, 64*256*kib + 5000, func(int) []*simPeer { return seeds(4, 2<<20) }, nil},
		{"one seed", 64 * kib, 100 * 64 * kib, func(int) []*simPeer { return seeds(1, 1<<20) }, nil},
		{"partial peers", 256 * kib, 80 * 256 * kib, func(n int) []*simPeer { return randomPeers(1, 6, n, 0.4, 1<<20) }, nil},
		{"sparse peers", 32 * kib, 300*32*kib - 1, func(n int) []*simPeer { return randomPeers(2, 10, n, 0.05, 256*kib) }, nil},
		{"hash failures", 256 * kib, 40 * 256 * kib, func(int) []*simPeer { return seeds(3, 1<<20) }, []int{0, 7, 39}},
		{"piece smaller than a block", 5000, 123456, func(int) []*simPeer { return seeds(2, 100*kib) }, nil},
		{"late joiners and leavers", 128 * kib, 60 * 128 * kib, func(n int) []*simPeer {
			ps := randomPeers(3, 5, n, 0.5, 512*kib)
			ps[0].leaveAt = 2 * time.Second
			ps[1].joinAt = 3 * time.Second
			ps[2].leaveAt = 5 * time.Second
			return append(ps, &simPeer{id: 99, all: true, rate: 300 * kib, latency: 10 * time.Millisecond, joinAt: 4 * time.Second})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := int((tt.total + tt.pieceLen - 1) / tt.pieceLen)
			s := newSim(t, tt.pieceLen, tt.total, 7, tt.peers(n))
			s.failOnce = make(map[int]bool)
			for _, i := range tt.failOnce {
				s.failOnce[i] = true
			}
			s.run(10*time.Minute, s.allDone)
			s.checkFinal()
			if len(s.failOnce) != 0 {
				t.Errorf("pieces %v never failed", s.failOnce)
			}
			t.Log(s)
		})
	}
}

// (a) The same seed gives the same download, so simulations can be compared run to run.
func TestSimReproducible(t *testing.T) {
	run := func() []int {
		s := newSim(t, 64*kib, 200*64*kib, 42, randomPeers(5, 5, 200, 0.5, 1<<20))
		s.run(10*time.Minute, s.allDone)
		return s.order
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Fatalf("two runs with one seed completed pieces in different orders:\n%v\n%v", a, b)
	}
}

// (b) A piece only one peer has is fetched early, not left to the end.
func TestSimRarestFirst(t *testing.T) {
	const pieces, rare = 100, 63
	var ps []*simPeer
	for k := range 5 {
		bf := bitfield.Full(pieces)
		if k > 0 {
			bf.Clear(rare)
		}
		ps = append(ps, &simPeer{id: PeerID(k + 1), has: bf, rate: 1 << 20, latency: 10 * time.Millisecond})
	}
	s := newSim(t, 64*kib, pieces*64*kib, 1, ps)
	s.run(10*time.Minute, s.allDone)
	s.checkFinal()
	if at := slices.Index(s.order, rare); at > 5 {
		t.Errorf("rare piece completed %dth of %d; order %v", at+1, pieces, s.order[:10])
	}
}

// (c) Started pieces are finished before new ones start, so few pieces are half done at once.
func TestSimPartialBounded(t *testing.T) {
	const peers = 8
	s := newSim(t, 1<<20, 100<<20, 3, randomPeers(9, peers, 100, 0.7, 1<<20))
	s.run(10*time.Minute, s.allDone)
	s.checkFinal()
	if s.maxPartial > peers+4 {
		t.Errorf("up to %d pieces partial at once with %d peers", s.maxPartial, peers)
	}
	t.Log(s)
}

// (i) Requests to a peer that stalls expire and its blocks complete from others.
func TestSimTimeoutFreesBlocks(t *testing.T) {
	ps := seeds(3, 512*kib)
	ps[0].stallAt = time.Second
	s := newSim(t, 256*kib, 60*256*kib, 5, ps)
	s.p.noDuplicates = true // or endgame would fetch the stuck blocks before they expire
	s.run(10*time.Minute, s.allDone)
	s.checkFinal()
	if s.expired == 0 {
		t.Errorf("no request expired at the stalled peer")
	}
	t.Log(s)
}

// (g) A peer leaving mid-piece frees its blocks; others complete them.
func TestSimPeerLeavesMidPiece(t *testing.T) {
	ps := seeds(3, 512*kib)
	s := newSim(t, 1<<20, 20<<20, 5, ps)
	var freed []Block
	s.onTick = func(s *sim) {
		if s.elapsed() >= 1500*time.Millisecond && !ps[0].gone {
			ps[0].gone = true
			freed = s.p.PeerRemove(ps[0].id)
			for _, b := range freed {
				delete(s.outstanding[b], ps[0].id)
			}
		}
	}
	s.run(10*time.Minute, s.allDone)
	s.checkFinal()
	if len(freed) == 0 {
		t.Fatalf("peer left with nothing outstanding; the test proves nothing")
	}
	t.Logf("%d blocks freed; %v", len(freed), s)
}

// (h) Endgame: the last blocks are requested from a second peer and the slower copy is
// cancelled when the first arrives.
func TestSimEndgame(t *testing.T) {
	ps := seeds(4, 1<<20)
	ps[3].rate = 64 * kib // a slow peer would otherwise hold the last blocks
	s := newSim(t, 256*kib, 30*256*kib, 5, ps)
	s.run(10*time.Minute, s.allDone)
	s.checkFinal()
	if s.dups == 0 || s.cancels == 0 {
		t.Errorf("endgame made %d duplicate requests and %d cancels, want some", s.dups, s.cancels)
	}
	t.Log(s)

	// Without duplicates the download ends when the slow peer delivers its last blocks.
	s2 := newSim(t, 256*kib, 30*256*kib, 5, seeds(4, 1<<20))
	s2.peers[3].rate = 64 * kib
	s2.p.noDuplicates = true
	s2.run(10*time.Minute, s2.allDone)
	if s.elapsed() >= s2.elapsed() {
		t.Errorf("endgame finished at %v, without duplicates at %v", s.elapsed(), s2.elapsed())
	}
	t.Logf("with endgame %v, without %v", s.elapsed(), s2.elapsed())
}
