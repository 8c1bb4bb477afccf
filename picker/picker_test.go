package picker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

func TestGeometryMatchesMetainfo(t *testing.T) {
	if BlockSize != metainfo.BlockSize {
		t.Fatalf("BlockSize %d, metainfo.BlockSize %d", BlockSize, metainfo.BlockSize)
	}
	for _, tt := range []struct{ pieceLen, total int64 }{
		{256 * kib, 10 * 256 * kib}, {256 * kib, 10*256*kib + 1}, {256 * kib, 1},
		{5000, 123456}, {32 * kib, 32*kib - 1}, {4 << 20, 3<<20 + 7},
	} {
		g := newGeometry(tt.pieceLen, tt.total)
		info := &metainfo.Info{PieceLength: tt.pieceLen, TotalLength: tt.total,
			Pieces: make([]metainfo.Hash, (tt.total+tt.pieceLen-1)/tt.pieceLen)}
		if g.numPieces != info.NumPieces() {
			t.Errorf("%+v: %d pieces, metainfo %d", tt, g.numPieces, info.NumPieces())
		}
		var sum int64
		for i := range g.numPieces {
			if g.numBlocks(i) != info.NumBlocks(i) {
				t.Errorf("%+v piece %d: %d blocks, metainfo %d", tt, i, g.numBlocks(i), info.NumBlocks(i))
			}
			for b := range g.numBlocks(i) {
				if g.blockSize(i, b) != info.BlockSizeAt(i, b) {
					t.Errorf("%+v block %d/%d: %d, metainfo %d", tt, i, b, g.blockSize(i, b), info.BlockSizeAt(i, b))
				}
				sum += int64(g.blockSize(i, b))
			}
		}
		if sum != tt.total {
			t.Errorf("%+v: blocks sum to %d", tt, sum)
		}
	}
}

// newTest returns a picker of n pieces of 4 blocks each.
func newTest(t *testing.T, n int) *Picker {
	t.Helper()
	return New(4*BlockSize, int64(n)*4*BlockSize, 1)
}

func bf(n int, pieces ...int) bitfield.Bitfield {
	f := bitfield.New(n)
	for _, i := range pieces {
		f.Set(i)
	}
	return f
}

func pieces(bs []Block) []int {
	var out []int
	for _, b := range bs {
		if len(out) == 0 || out[len(out)-1] != b.Piece {
			out = append(out, b.Piece)
		}
	}
	return out
}

var t0 = epoch

func TestPickOrder(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *Picker) // peer 1 is the one picking; it has pieces 0..9
		limit int
		want  []int // pieces of the returned blocks, in order
	}{
		{"rarest first", func(p *Picker) {
			p.PeerAdd(2)
			p.PeerBitfield(2, bf(10, 0, 1, 2, 3, 4, 5, 6, 8, 9)) // 7 only at peer 1
		}, 4, []int{7}},
		{"only pieces the peer has", func(p *Picker) {
			p.PeerAdd(2)
			p.PeerHaveAll(2)
			for i := range 10 {
				if i != 5 {
					p.SetHave(i)
				}
			}
		}, 8, []int{5}},
		{"partial before new", func(p *Picker) {
			p.PeerAdd(2)
			p.PeerHaveAll(2)
			p.PeerUnchoked(2)
			p.PeerBitfield(3, bf(10, 6))
			p.SetHave(3)
			p.Pick(2, 2, t0) // starts some piece, takes 2 of its 4 blocks
		}, 2, nil}, // checked below: the piece peer 2 started
		{"due first, earliest due first", func(p *Picker) {
			p.SetWants(1, []Want{{First: 8, Last: 8, Due: t0.Add(2 * time.Second)}})
			p.SetWants(2, []Want{{First: 4, Last: 4, Due: t0.Add(time.Second)}})
		}, 8, []int{4, 8}},
		{"same due in piece order", func(p *Picker) {
			p.SetWants(1, []Want{{First: 6, Last: 7, Due: t0}, {First: 2, Last: 2, Due: t0}})
		}, 12, []int{2, 6, 7}},
		{"earliest over owners", func(p *Picker) {
			p.SetWants(1, []Want{{First: 3, Last: 3, Due: t0.Add(time.Hour)}})
			p.SetWants(2, []Want{{First: 3, Last: 3, Due: t0}, {First: 1, Last: 1, Due: t0.Add(time.Minute)}})
		}, 8, []int{3, 1}},
		{"background off fetches due only", func(p *Picker) {
			p.SetBackground(false)
			p.SetWants(1, []Want{{First: 5, Last: 5, Due: t0}})
		}, 16, []int{5}},
		{"skipped pieces not fetched", func(p *Picker) {
			p.SetSkip(0, 8, true)
		}, 16, []int{9}},
		{"skipped but due is fetched", func(p *Picker) {
			p.SetSkip(0, 9, true)
			p.SetWants(1, []Want{{First: 2, Last: 2, Due: t0}})
		}, 16, []int{2}},
		{"nothing when all had", func(p *Picker) {
			for i := range 10 {
				p.SetHave(i)
			}
		}, 16, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTest(t, 10)
			p.PeerAdd(1)
			p.PeerBitfield(1, bitfield.Full(10))
			p.PeerAdd(3)
			tt.setup(p)
			got := p.Pick(1, tt.limit, t0)
			if len(got) > tt.limit {
				t.Fatalf("%d blocks for limit %d", len(got), tt.limit)
			}
			if tt.name == "partial before new" {
				started := p.partialOrder[0]
				if len(got) != 2 || got[0].Piece != started || got[1].Piece != started {
					t.Fatalf("got %v, want the 2 free blocks of started piece %d", got, started)
				}
				return
			}
			if ps := pieces(got); !slices.Equal(ps, tt.want) {
				t.Errorf("picked pieces %v, want %v (%v)", ps, tt.want, got)
			}
			checkInvariants(t, p)
		})
	}
}

func TestReceived(t *testing.T) {
	p := New(2*BlockSize, 3*BlockSize+100, 1) // pieces: 2 blocks, then 1 short-ish + tail
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.SetWants(1, []Want{{First: 0, Last: 1, Due: t0}})
	got := p.Pick(1, 10, t0)
	want := []Block{{0, 0, BlockSize}, {0, BlockSize, BlockSize}, {1, 0, BlockSize}, {1, BlockSize, 100}}
	if !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v", got, want)
	}
	steps := []struct {
		b                Block
		complete, ok     bool
		outstandingAfter int
		name             string
	}{
		{Block{0, 0, BlockSize}, false, true, 3, "first block"},
		{Block{0, 0, BlockSize}, false, false, 3, "again"},
		{Block{0, 1, BlockSize}, false, false, 3, "unaligned"},
		{Block{1, BlockSize, BlockSize}, false, false, 3, "wrong length"},
		{Block{2, 0, BlockSize}, false, false, 3, "past the end"},
		{Block{0, BlockSize, BlockSize}, true, true, 2, "completes piece 0"},
		{Block{1, BlockSize, 100}, false, true, 1, "short last block"},
		{Block{1, 0, BlockSize}, true, true, 0, "completes piece 1"},
	}
	for _, st := range steps {
		cancel, complete, ok := p.Received(1, st.b, t0)
		if complete != st.complete || ok != st.ok || cancel != nil {
			t.Errorf("%s: Received(%v) = %v, %v, %v; want nil, %v, %v", st.name, st.b, cancel, complete, ok, st.complete, st.ok)
		}
		if n := p.Outstanding(1); n != st.outstandingAfter {
			t.Errorf("%s: %d outstanding, want %d", st.name, n, st.outstandingAfter)
		}
		checkInvariants(t, p)
	}
	p.SetHave(0)
	p.PieceFailed(1)
	if got := p.Pick(1, 10, t0); !slices.Equal(got, want[2:]) {
		t.Errorf("after piece 1 failed, picked %v, want %v", got, want[2:])
	}
	if _, _, ok := p.Received(1, Block{0, 0, BlockSize}, t0); ok {
		t.Errorf("block of a verified piece accepted")
	}
	checkInvariants(t, p)
}

func TestDropsFreeBlocks(t *testing.T) {
	tests := []struct {
		name string
		drop func(p *Picker, picked []Block) []Block // returns the blocks it freed
	}{
		{"remove", func(p *Picker, _ []Block) []Block { return p.PeerRemove(1) }},
		{"choke", func(p *Picker, _ []Block) []Block { return p.PeerChoked(1) }},
		{"reject", func(p *Picker, b []Block) []Block { p.Rejected(1, b[1], time.Unix(0, 0), true); return b[1:2] }},
		{"cancel", func(p *Picker, b []Block) []Block { p.Cancelled(1, b[2]); return b[2:3] }},
		{"expire", func(p *Picker, _ []Block) []Block {
			var out []Block
			for _, r := range p.Expired(t0.Add(snubTimeout + time.Second)) {
				out = append(out, r.Block)
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTest(t, 4)
			for _, id := range []PeerID{1, 2} {
				p.PeerAdd(id)
				p.PeerHaveAll(id)
			}
			picked := p.Pick(1, 3, t0)
			freed := tt.drop(p, picked)
			if len(freed) == 0 {
				t.Fatalf("nothing freed")
			}
			checkInvariants(t, p)
			// Peer 2 gets the freed blocks first: they belong to the started piece.
			again := p.Pick(2, len(freed), t0)
			slices.SortFunc(again, cmpBlock)
			slices.SortFunc(freed, cmpBlock)
			if !slices.Equal(again, freed) {
				t.Errorf("peer 2 picked %v, want the freed %v", again, freed)
			}
			checkInvariants(t, p)
		})
	}
}

func cmpBlock(a, b Block) int {
	if a.Piece != b.Piece {
		return a.Piece - b.Piece
	}
	return a.Begin - b.Begin
}

func TestShare(t *testing.T) {
	const fast, slow = 1 << 20, 64 * kib
	tests := []struct {
		name  string
		rates []float64 // peer 1 asks; others are unchoked and have the piece
		out   []int     // outstanding blocks per peer
		free  int
		want  int
	}{
		{"alone takes all", []float64{slow}, []int{0}, 16, 16},
		{"equal idle peers split", []float64{fast, fast, fast, fast}, []int{0, 0, 0, 0}, 256, 64},
		{"last block goes to the asker", []float64{fast, fast}, []int{0, 0}, 1, 1},
		{"slow peer left out of a short piece", []float64{slow, fast}, []int{0, 0}, 4, 0},
		{"slow peer takes a few of many", []float64{slow, fast}, []int{0, 0}, 64, 3},
		{"slow peer helps a swamped fast peer", []float64{slow, fast}, []int{0, 200}, 4, 4},
		{"fast peer with room soon keeps it", []float64{slow, fast}, []int{0, 8}, 4, 0},
		{"busy asker defers to idle peers", []float64{fast, fast}, []int{32, 0}, 8, 0},
		{"unknown rate is treated as slow", []float64{0, fast}, []int{0, 0}, 8, 0},
		{"choked fast peer is not counted on", []float64{slow, -fast}, []int{0, 0}, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(BlockSize*256, BlockSize*256*4, 1)
			for k, r := range tt.rates {
				id := PeerID(k + 1)
				p.PeerAdd(id)
				p.PeerHaveAll(id)
				p.PeerUnchoked(id)
				if r < 0 { // marks a peer that choked us
					p.PeerChokedFast(id)
					r = -r
				}
				p.PeerRate(id, r)
				// Fill the outstanding queue with blocks of another piece.
				for j := range tt.out[k] {
					p.peers[id].out[blockKey{3, int32(j)}] = struct{}{}
				}
			}
			if got := p.share(1, p.peers[1], 0, tt.free, 1000); got != tt.want {
				t.Errorf("share = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		rate float64
		out  int
		want time.Duration
	}{
		{0, 0, snubTimeout},
		{1 << 20, 10, minTimeout},
		{64 * kib, 100, 50 * time.Second},
		{16 * kib, 100, snubTimeout},
	}
	for _, tt := range tests {
		pr := &peer{rate: tt.rate, out: map[blockKey]struct{}{}}
		for j := range tt.out - 1 {
			pr.out[blockKey{0, int32(j)}] = struct{}{}
		}
		// (out-1 queued + the one being timed) blocks, twice the drain time.
		if got := (&Picker{}).timeout(pr); got.Round(time.Second) != tt.want {
			t.Errorf("rate %v out %d: timeout %v, want %v", tt.rate, tt.out, got, tt.want)
		}
	}
}

func TestInteresting(t *testing.T) {
	p := newTest(t, 4)
	p.PeerAdd(1)
	p.PeerAdd(2)
	steps := []struct {
		name string
		do   func() bool // returns what PeerHave reported, if called
		want [2]bool     // Interesting(1), Interesting(2)
	}{
		{"nothing announced", func() bool { return false }, [2]bool{false, false}},
		{"have", func() bool { return p.PeerHave(1, 2) }, [2]bool{true, false}},
		{"we get it", func() bool { p.SetHave(2); return false }, [2]bool{false, false}},
		{"skipped piece", func() bool { p.SetSkip(3, 3, true); return p.PeerHave(1, 3) }, [2]bool{false, false}},
		{"skipped but due", func() bool { p.SetWants(1, []Want{{First: 3, Last: 3, Due: t0}}); return false }, [2]bool{true, false}},
		{"wants cleared", func() bool { p.ClearWants(1); return false }, [2]bool{false, false}},
		{"unskipped", func() bool { p.SetSkip(3, 3, false); return false }, [2]bool{true, false}},
		{"have all", func() bool { p.PeerHaveAll(2); return false }, [2]bool{true, true}},
		{"all but skipped had", func() bool {
			p.SetSkip(3, 3, true)
			p.SetHave(0)
			p.SetHave(1)
			return false
		}, [2]bool{false, false}},
	}
	for _, st := range steps {
		st.do()
		if got := [2]bool{p.Interesting(1), p.Interesting(2)}; got != st.want {
			t.Errorf("%s: interesting %v, want %v", st.name, got, st.want)
		}
		checkInvariants(t, p)
	}
	if !p.Done() {
		t.Errorf("not done with every unskipped piece had")
	}
}

func TestSetWantsCancels(t *testing.T) {
	for _, background := range []bool{true, false} {
		t.Run(fmt.Sprint("background ", background), func(t *testing.T) {
			p := newTest(t, 20)
			p.PeerAdd(1)
			p.PeerHaveAll(1)
			p.SetBackground(background)
			p.SetWants(1, []Want{{First: 0, Last: 1, Due: t0}})
			p.SetWants(2, []Want{{First: 10, Last: 10, Due: t0}})
			if got := pieces(p.Pick(1, 12, t0)); !slices.Equal(got, []int{0, 1, 10}) {
				t.Fatalf("picked %v", got)
			}
			cancel := p.SetWants(1, []Want{{First: 1, Last: 5, Due: t0}})
			if background {
				if cancel != nil {
					t.Errorf("background on, yet cancelled %v", cancel)
				}
				return
			}
			var want []Request
			for b := range 4 {
				want = append(want, Request{1, Block{0, b * BlockSize, BlockSize}})
			}
			if !slices.Equal(cancel, want) {
				t.Errorf("cancelled %v, want %v", cancel, want)
			}
			if got := pieces(p.Pick(1, 12, t0)); !slices.Equal(got, []int{2, 3, 4}) {
				t.Errorf("after seek picked %v, want 2 3 4", got)
			}
			checkInvariants(t, p)
		})
	}
}

// checkInvariants cross-checks the picker's redundant state.
func checkInvariants(t *testing.T, p *Picker) {
	t.Helper()
	n := p.geo.numPieces
	free := 0
	for i, ps := range p.partial {
		if !slices.Contains(p.partialOrder, i) {
			t.Fatalf("partial piece %d not in order list", i)
		}
		f, got := 0, 0
		for bi := range ps.blocks {
			bs := &ps.blocks[bi]
			if bs.got {
				got++
				if bs.n != 0 {
					t.Fatalf("piece %d block %d received and requested", i, bi)
				}
			} else if bs.n == 0 {
				f++
				if bi < ps.cursor {
					t.Fatalf("piece %d free block %d below cursor %d", i, bi, ps.cursor)
				}
			}
			for _, r := range bs.reqs[:bs.n] {
				pr := p.peers[r.peer]
				if pr == nil {
					t.Fatalf("piece %d block %d requested from unknown peer %d", i, bi, r.peer)
				}
				if _, ok := pr.out[blockKey{int32(i), int32(bi)}]; !ok {
					t.Fatalf("piece %d block %d requested from %d, not in its outstanding", i, bi, r.peer)
				}
				if !pr.all && !pr.has.Has(i) {
					t.Fatalf("piece %d requested from peer %d without it", i, r.peer)
				}
			}
		}
		if f != ps.free || got != ps.got {
			t.Fatalf("piece %d: free %d got %d, counted %d %d", i, ps.free, ps.got, f, got)
		}
		free += f
	}
	if len(p.partialOrder) != len(p.partial) || free != p.partialFree {
		t.Fatalf("%d partial in order, %d in map; free %d, counted %d", len(p.partialOrder), len(p.partial), p.partialFree, free)
	}
	for id, pr := range p.peers {
		for k := range pr.out {
			ps := p.partial[int(k.piece)]
			if ps == nil || !ps.blocks[k.block].holds(id) {
				t.Fatalf("peer %d outstanding %v unknown to its piece", id, k)
			}
		}
		if !pr.all {
			c := 0
			for i := range n {
				if pr.has.Has(i) && p.wanted(i) {
					c++
				}
			}
			if c != pr.interest {
				t.Fatalf("peer %d interest %d, counted %d", id, pr.interest, c)
			}
		}
	}
	avail := make([]int32, n)
	wanted := 0
	for i := range n {
		for _, pr := range p.peers {
			if !pr.all && pr.has.Has(i) {
				avail[i]++
			}
		}
		if p.wanted(i) {
			wanted++
		}
		if p.candidate(i) != p.rare.contains(i) {
			t.Fatalf("piece %d candidate %v, in buckets %v", i, p.candidate(i), p.rare.contains(i))
		}
		if p.rare.contains(i) && p.rare.buckets[avail[i]][p.rare.pos[i]] != int32(i) {
			t.Fatalf("piece %d not at its place in bucket %d", i, avail[i])
		}
	}
	if !slices.Equal(avail, p.avail) || wanted != p.wantedCount {
		t.Fatalf("availability or wanted count out of step")
	}
}

func TestSetHaveReturnsOutstanding(t *testing.T) {
	p := newTest(t, 3)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	got := p.Pick(1, 2, t0)
	dropped := p.SetHave(got[0].Piece)
	want := []Request{{1, got[0]}, {1, got[1]}}
	if !slices.Equal(dropped, want) {
		t.Errorf("SetHave dropped %v, want %v", dropped, want)
	}
	if p.Outstanding(1) != 0 {
		t.Errorf("%d outstanding after SetHave", p.Outstanding(1))
	}
	if _, _, ok := p.Received(1, got[0], t0); ok {
		t.Errorf("block of a had piece accepted")
	}
	checkInvariants(t, p)
}

func TestLostPieceIsWantedAgain(t *testing.T) {
	p := newTest(t, 4)
	p.PeerAdd(1)
	p.PeerBitfield(1, bf(4, 0, 1, 2, 3))
	for i := range 4 {
		p.SetHave(i)
	}
	if !p.Done() || p.Interesting(1) {
		t.Fatal("all pieces had: not done or still interesting")
	}
	now := time.Unix(100, 0)
	p.SetWants(7, []Want{{First: 2, Last: 2, Due: now}})
	p.Lost(2)
	checkInvariants(t, p)
	if p.Done() || p.Have(2) || !p.Interesting(1) {
		t.Fatalf("after Lost: done %v have %v interesting %v", p.Done(), p.Have(2), p.Interesting(1))
	}
	if due, ok := p.Due(2); !ok || !due.Equal(now) {
		t.Fatalf("lost piece a reader wants is not due again: %v %v", due, ok)
	}
	if got := pieces(p.Pick(1, 8, now)); len(got) == 0 || slices.ContainsFunc(got, func(i int) bool { return i != 2 }) {
		t.Fatalf("picked %v, want blocks of piece 2", got)
	}
	p.Lost(2) // not had: no effect
	checkInvariants(t, p)
}

func TestStarvedAndPreemptible(t *testing.T) {
	p := newTest(t, 8)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.PeerRate(1, 1<<20)
	now := time.Unix(100, 0)
	bg := p.Pick(1, 8, now) // background: two pieces' worth
	if len(bg) != 8 {
		t.Fatalf("picked %d background blocks, want 8", len(bg))
	}
	if p.Starved(now.Add(time.Second)) {
		t.Fatal("starved with nothing due")
	}
	due := 7
	if slices.Contains(pieces(bg), due) {
		due = 6
	}
	p.SetWants(1, []Want{{First: due, Last: due, Due: now}})
	if !p.Starved(now.Add(time.Second)) {
		t.Fatal("a due piece with no requests is not starved")
	}
	if p.Starved(now.Add(-time.Second)) {
		t.Fatal("starved before the piece is due")
	}
	pre := p.Preemptible(1, now, now.Add(time.Second))
	if len(pre) != 8 {
		t.Fatalf("preemptible %d, want the 8 background requests", len(pre))
	}
	for _, b := range pre {
		p.Cancelled(1, b)
	}
	got := p.Pick(1, 4, now)
	if len(got) == 0 || got[0].Piece != due {
		t.Fatalf("after preemption picked %v, want the due piece first", got)
	}
	for range 4 {
		p.Pick(1, 4, now)
	}
	if p.Starved(now.Add(time.Second)) {
		t.Fatal("still starved with every due block requested")
	}
	checkInvariants(t, p)
}

// A seek overtakes a readahead window: with every peer's pipeline full of the window's
// requests (due seconds from now), the seek's urgent piece gets them cancelled at the peers
// that have it, and after a refill its blocks are first in line there; requests for pieces
// due about as soon as the urgent one stay.
func TestPreemptOvertakesWindow(t *testing.T) {
	p := newTest(t, 64)
	now := time.Unix(100, 0)
	for id := PeerID(1); id <= 2; id++ {
		p.PeerAdd(id)
		p.PeerHaveAll(id)
		p.PeerRate(id, 1<<20)
	}
	p.PeerAdd(3) // has only the window, not the seek's piece
	bf := bitfield.New(64)
	for i := 0; i < 20; i++ {
		bf.Set(i)
	}
	p.PeerBitfield(3, bf)
	p.PeerRate(3, 1<<20)
	var window []Want
	for i := range 16 {
		window = append(window, Want{First: i, Last: i, Due: now.Add(time.Duration(i+2) * time.Second)})
	}
	p.SetWants(1, window)
	for id := PeerID(3); id >= 1; id-- {
		if got := p.Pick(id, 16, now); len(got) == 0 {
			t.Fatalf("peer %d: picked no window blocks", id)
		}
	}
	p.SetWants(2, []Want{{First: 50, Last: 50, Due: now}, {First: 40, Last: 40, Due: now.Add(500 * time.Millisecond)}})
	by := now.Add(2 * time.Second)
	if !p.Starved(by) {
		t.Fatal("the seek's pieces are not starved")
	}
	if pre := p.Preemptible(3, now, by); len(pre) != 0 {
		t.Fatalf("peer 3 lacks the seek's pieces but would cancel %v", pre)
	}
	// As the run loop does: cancel at every peer, then refill.
	for id := PeerID(1); id <= 2; id++ {
		pre := p.Preemptible(id, now, by)
		if len(pre) == 0 {
			t.Fatalf("peer %d: nothing to preempt", id)
		}
		for _, b := range pre {
			if due, _ := p.Due(b.Piece); !due.After(now.Add(preemptSlack)) {
				t.Fatalf("peer %d: would cancel piece %d, due %v, as soon as the seek", id, b.Piece, due.Sub(now))
			}
			p.Cancelled(id, b)
		}
	}
	for id := PeerID(1); id <= 2; id++ {
		// What stays queued, ahead of the refill: only pieces due within the slack.
		for k := range p.peers[id].out {
			if due, _ := p.Due(int(k.piece)); due.After(now.Add(preemptSlack)) {
				t.Errorf("peer %d still has piece %d (due in %v) queued", id, k.piece, due.Sub(now))
			}
		}
	}
	first := map[PeerID]int{}
	for id := PeerID(1); id <= 2; id++ {
		if got := p.Pick(id, 8, now); len(got) > 0 {
			first[id] = got[0].Piece
		}
	}
	if first[1] != 50 && first[2] != 50 {
		t.Fatalf("after preemption the first blocks picked are of pieces %v, want the seek's piece 50 at some peer", first)
	}
	checkInvariants(t, p)
}

// A piece a peer rejected while it had us unchoked is not asked of it again at once (a
// spreading seed rejects pieces others have), but is after refuseFor, or once it unchokes
// us anew; other peers are still asked for it.
func TestRejectedPieceRestsAtThatPeer(t *testing.T) {
	p := newTest(t, 2)
	for id := PeerID(1); id <= 2; id++ {
		p.PeerAdd(id)
		p.PeerHaveAll(id)
		p.PeerRate(id, 1<<20)
	}
	now := time.Unix(100, 0)
	got := p.Pick(1, 1, now)
	if len(got) != 1 {
		t.Fatalf("picked %v", got)
	}
	refused := got[0].Piece
	p.Rejected(1, got[0], now, true)
	for _, b := range p.Pick(1, 8, now) {
		if b.Piece == refused {
			t.Fatalf("piece %d asked of the peer that just rejected it", refused)
		}
	}
	if !slices.Contains(pieces(p.Pick(2, 8, now)), refused) {
		t.Fatalf("the other peer is not asked for piece %d", refused)
	}
	p.Expired(now.Add(refuseFor)) // forgiven (and peer 2's requests expired: free again)
	if !slices.Contains(pieces(p.Pick(1, 8, now.Add(refuseFor))), refused) {
		t.Fatalf("piece %d still not asked of peer 1 after %v", refused, refuseFor)
	}
	checkInvariants(t, p)

	// Without rest (a peer that rejects for reasons of its own) the piece is asked again.
	r := newTest(t, 1)
	r.PeerAdd(1)
	r.PeerHaveAll(1)
	rb := r.Pick(1, 1, now)[0]
	r.Rejected(1, rb, now, false)
	if got := r.Pick(1, 1, now); len(got) != 1 || got[0].Piece != rb.Piece {
		t.Fatalf("after a reject without rest picked %v, want piece %d again", got, rb.Piece)
	}

	// Rejects from a choking peer are no refusal, and an unchoke forgives.
	q := newTest(t, 1)
	q.PeerAdd(1)
	q.PeerHaveAll(1)
	b := q.Pick(1, 1, now)[0]
	q.Rejected(1, b, now, true)
	q.PeerUnchoked(1)
	if len(q.Pick(1, 1, now)) != 1 {
		t.Fatal("an unchoke did not forgive the refusal")
	}
	b = q.Pick(1, 1, now)[0]
	q.PeerChokedFast(1)
	q.Rejected(1, b, now, true)
	if got := q.Pick(1, 1, now); len(got) != 1 || got[0].Piece != b.Piece {
		t.Fatalf("after a choking peer's reject picked %v, want piece %d again", got, b.Piece)
	}
}

// A suggested piece (BEP 6) is started before the rarest-first choice, after due pieces;
// a suggestion of a piece we have is dropped.
func TestSuggestedPieceFirst(t *testing.T) {
	p := newTest(t, 8)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.SetHave(2)
	now := time.Unix(100, 0)
	p.PeerSuggest(1, 2) // had: no effect
	p.PeerSuggest(1, 6)
	got := p.Pick(1, 4, now)
	if len(got) != 4 || slices.ContainsFunc(got, func(b Block) bool { return b.Piece != 6 }) {
		t.Fatalf("picked %v, want the 4 blocks of suggested piece 6", got)
	}
	if len(p.peers[1].suggested) != 0 {
		t.Fatalf("suggestions left: %v", p.peers[1].suggested)
	}
	// A due piece still comes first.
	p.SetWants(1, []Want{{First: 7, Last: 7, Due: now}})
	p.PeerSuggest(1, 5)
	if got := p.Pick(1, 1, now); len(got) != 1 || got[0].Piece != 7 {
		t.Fatalf("picked %v, want the due piece 7 before the suggestion", got)
	}
	checkInvariants(t, p)
}

// A distant peer's requests younger than its round trip are not preempted for a piece not
// due yet: a cancel would arrive after the block was queued, and the block would come
// twice. For a piece a reader waits on now they are.
func TestPreemptSparesYoungRequests(t *testing.T) {
	t0 := time.Unix(100, 0)
	p, bg := busyPeer(t, 200*time.Millisecond, 24, t0)
	seek := notIn(bg, 15)
	now := t0.Add(50 * time.Millisecond)
	// A readahead window's piece, due in half a second: sooner than the peer's queue
	// drains (24 blocks and the piece's 4 at 1 MiB/s, and the round trip).
	p.SetWants(1, []Want{{First: seek, Last: seek, Due: now.Add(500 * time.Millisecond)}})
	by := now.Add(2 * time.Second)
	if !p.Starved(by) {
		t.Fatal("the window's piece is not starved")
	}
	if pre := p.Preemptible(1, now, by); len(pre) != 0 {
		t.Fatalf("preempted %d requests 50 ms old at a peer 200 ms away", len(pre))
	}
	later := t0.Add(250 * time.Millisecond)
	// The oldest 13 (200 ms at 1 MiB/s) are committed: in flight, or sent before a cancel
	// would arrive.
	if pre := p.Preemptible(1, later, by); len(pre) != 24-13 {
		t.Fatalf("preempted %d requests older than the round trip, want the 11 not committed", len(pre))
	}
	// A reader waiting now (a seek) gets even young requests out of its way.
	p.SetWants(1, []Want{{First: seek, Last: seek, Due: now}})
	if pre := p.Preemptible(1, now, by); len(pre) != 24-13 {
		t.Fatalf("for a piece due now preempted %d young requests, want the 11 not committed", len(pre))
	}
}

// A peer that sends blocks we cancelled (libtorrent reads requests into its send buffer)
// shows how deep its committed queue is; later preemptions leave that many of its oldest
// requests alone, since cancelling them would only bring each block twice, and the
// lesson is forgotten after two windows without a failed cancel.
func TestPreemptLearnsCommittedDepth(t *testing.T) {
	t0 := time.Unix(100, 0)
	p, bg := busyPeer(t, time.Millisecond, 16, t0) // a round trip's worth is one block
	seek := notIn(bg, 15)
	p.SetWants(1, []Want{{First: seek, Last: seek, Due: t0}})
	by := t0.Add(2 * time.Second)
	now := t0.Add(10 * time.Millisecond)
	pre := p.Preemptible(1, now, by)
	if len(pre) != 15 {
		t.Fatalf("preempted %d of 16, want all but the oldest", len(pre))
	}
	for _, b := range pre {
		p.Cancelled(1, b)
	}
	// The peer sends the 8 oldest it was asked to cancel anyway: places 1 to 8.
	for _, b := range bg[1:9] {
		if _, _, ok := p.Received(1, b, now.Add(5*time.Millisecond)); !ok {
			t.Fatalf("block %+v not accepted", b)
		}
	}
	if got := p.peers[1].committed; got != 9 {
		t.Fatalf("learned a committed depth of %d, want 9", got)
	}
	// Background again, a full pipeline, then another piece due now.
	now = now.Add(20 * time.Millisecond)
	p.ClearWants(1)
	more := p.Pick(1, 24, now)
	if len(p.peers[1].out) < 20 {
		t.Fatalf("%d outstanding after a refill of %d", len(p.peers[1].out), len(more))
	}
	next := 15
	for p.partial[next] != nil || p.Have(next) {
		next--
	}
	p.SetWants(1, []Want{{First: next, Last: next, Due: now}})
	if !p.Starved(by) {
		t.Fatal("the second due piece is not starved")
	}
	order := p.queueOrder(1, p.peers[1])
	pre = p.Preemptible(1, now, by)
	if len(pre) != len(order)-9 {
		t.Errorf("preempted %d of %d outstanding, want all but the committed 9", len(pre), len(order))
	}
	for _, b := range pre {
		k, _ := p.key(b)
		if i := slices.IndexFunc(order, func(q queued) bool { return q.k == k }); i < 9 {
			t.Errorf("cancels block %+v, place %d in the queue, within the committed 9", b, i)
		}
	}
	// Two windows later without a failed cancel, only the round trip's worth is spared.
	p.committedDepth(p.peers[1], now.Add(committedWindow+time.Second))
	if d := p.committedDepth(p.peers[1], now.Add(2*committedWindow+2*time.Second)); d != 1 {
		t.Errorf("committed depth %d two windows later, want 1", d)
	}
	checkInvariants(t, p)
}

// A window's piece that the peer can still deliver in time behind its queue cancels
// nothing there; one due before the queue drains does.
func TestPreemptOnlyWhatCannotWait(t *testing.T) {
	now := time.Unix(100, 0)
	p, bg := busyPeer(t, 20*time.Millisecond, 8, now) // 128 KiB: 125 ms at 1 MiB/s
	w := notIn(bg, 15)
	by := now.Add(2 * time.Second)
	later := now.Add(50 * time.Millisecond) // the requests are older than the round trip
	// Queue, the piece's 4 blocks and the round trip: 207 ms.
	p.SetWants(1, []Want{{First: w, Last: w, Due: now.Add(300 * time.Millisecond)}})
	if !p.Starved(by) {
		t.Fatal("not starved")
	}
	if pre := p.Preemptible(1, later, by); len(pre) != 0 {
		t.Errorf("preempted %d requests for a piece the queue delivers in time", len(pre))
	}
	p.SetWants(1, []Want{{First: w, Last: w, Due: now.Add(150 * time.Millisecond)}})
	if pre := p.Preemptible(1, later, by); len(pre) != 8-2 {
		t.Errorf("preempted %d requests for a piece due before the queue drains, want 6 (20 ms at 1 MiB/s, 1.3 blocks, round up to 2 committed)", len(pre))
	}
}

// busyPeer makes a picker of 16 four-block pieces with one have-all peer at 1 MiB/s and
// the given round trip, whose pipeline holds n background requests made at t0.
func busyPeer(t *testing.T, rtt time.Duration, n int, t0 time.Time) (*Picker, []Block) {
	t.Helper()
	p := newTest(t, 16)
	p.PeerAdd(1)
	p.PeerHaveAll(1)
	p.PeerRate(1, 1<<20)
	p.peers[1].rtt = rtt
	bg := p.Pick(1, n, t0)
	if len(bg) != n {
		t.Fatalf("picked %d background blocks, want %d", len(bg), n)
	}
	return p, bg
}

// notIn is the highest piece, from `from` down, that none of blocks is of.
func notIn(blocks []Block, from int) int {
	for slices.Contains(pieces(blocks), from) {
		from--
	}
	return from
}
