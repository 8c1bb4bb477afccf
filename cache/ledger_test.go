package cache

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

// diskUsage is the bytes the files under dir really occupy (st_blocks*512).
func diskUsage(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// owner drives a Ledger and a Storage the way the swarm's run loop does: a piece is
// started (room made), written, hashed and admitted; every eviction is punched with the
// ledger's word on which neighbours are idle.
type owner struct {
	t       testing.TB
	s       *Storage
	l       *Ledger
	evicted []int
}

func newOwner(t testing.TB, dir string, info *metainfo.Info, bound int64) *owner {
	return &owner{t: t, s: open(t, dir, info, Options{}), l: NewLedger(info, bound)}
}

func (o *owner) evict(pieces []int) {
	o.t.Helper()
	for _, i := range pieces {
		if err := o.s.Punch(i, o.l.Idle(i-1), o.l.Idle(i+1)); err != nil {
			o.t.Fatalf("punch %d: %v", i, err)
		}
		o.evicted = append(o.evicted, i)
	}
}

func (o *owner) start(i int) { o.evict(o.l.Start(i, false)) }

func (o *owner) finish(i int, data []byte) {
	o.t.Helper()
	ok, err := o.s.HashPiece(i)
	if err != nil || !ok {
		o.t.Fatalf("HashPiece(%d) = %v, %v", i, ok, err)
	}
	o.evict(o.l.Admit(i))
}

func (o *owner) add(i int, data []byte) {
	o.t.Helper()
	o.start(i)
	writePiece(o.t, o.s, data, i, nil)
	o.finish(i, data)
}

func TestBoundedNeverExceeds(t *testing.T) {
	for _, g := range []struct {
		name  string
		files []fileSpec
		// Pieces are counted in bytes but disk use in blocks: where a stored range starts
		// or ends inside a block (file edges, unaligned pieces) the whole block counts.
		slack int64
	}{
		{"single", []fileSpec{{"", 4 << 20, false}}, 0},
		{"multi", []fileSpec{{"a", 1<<20 + 5000, false}, {"b", 300 * kib, false}, {"c", 2<<20 + 77, false}}, 3 * 2 * 4096},
	} {
		t.Run(g.name, func(t *testing.T) {
			const pieceLen = 64 * kib
			const maxBytes = 8 * pieceLen
			info, data := makeTorrent(t, "b", pieceLen, len(g.files) == 1, g.files)
			dir := t.TempDir()
			o := newOwner(t, dir, info, maxBytes)
			for i := range info.NumPieces() {
				o.start(i)
				writePiece(t, o.s, data, i, nil)
				// Pieces in flight count against the bound from their start.
				if u := diskUsage(t, dir); u > maxBytes+g.slack {
					t.Fatalf("after writing piece %d disk use %d > bound %d", i, u, maxBytes)
				}
				o.finish(i, data)
				if u := diskUsage(t, dir); u > maxBytes+g.slack {
					t.Fatalf("after verifying piece %d disk use %d > bound %d", i, u, maxBytes)
				}
				if b := o.l.PresentBytes(); b > maxBytes {
					t.Fatalf("PresentBytes %d > bound", b)
				}
			}
			// Oldest first: with no reads, pieces leave in the order they came.
			want := make([]int, info.NumPieces()-8)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(o.evicted, want) {
				t.Fatalf("evicted %v, want %v", o.evicted, want)
			}
			for i := range info.NumPieces() {
				if o.l.Present(i) != (i >= info.NumPieces()-8) {
					t.Errorf("piece %d present=%v", i, o.l.Present(i))
				}
			}
			// What is left still reads back right.
			last := info.NumPieces() - 1
			p := make([]byte, info.PieceSize(last))
			if _, err := o.s.ReadAt(p, info.PieceOffset(last)); err != nil || !bytes.Equal(p, data[info.PieceOffset(last):]) {
				t.Fatalf("ReadAt last piece: %v", err)
			}
		})
	}
}

func TestBoundedCountsPiecesInFlight(t *testing.T) {
	const pieceLen = 64 * kib
	const maxBytes = 8 * pieceLen
	info, data := makeTorrent(t, "b", pieceLen, true, []fileSpec{{"", 32 * pieceLen, false}})
	dir := t.TempDir()
	o := newOwner(t, dir, info, maxBytes)
	// Four pieces at a time are written before any is verified, as a swarm does.
	for i := 0; i < info.NumPieces(); i += 4 {
		for k := i; k < i+4; k++ {
			if !o.l.Fits(k, false) {
				t.Fatalf("piece %d does not fit with nothing pinned", k)
			}
			o.start(k)
			writePiece(t, o.s, data, k, nil)
		}
		if u := diskUsage(t, dir); u > maxBytes {
			t.Fatalf("with pieces %d..%d in flight disk use %d > bound %d", i, i+3, u, maxBytes)
		}
		for k := i; k < i+4; k++ {
			o.finish(k, data)
		}
		if u := diskUsage(t, dir); u > maxBytes {
			t.Fatalf("after verifying pieces %d..%d disk use %d > bound %d", i, i+3, u, maxBytes)
		}
	}
}

// geo is a torrent geometry without data, for the ledger's pure logic.
func geo(pieces int, pieceLen int64) *metainfo.Info {
	return &metainfo.Info{Name: "g", PieceLength: pieceLen, TotalLength: int64(pieces) * pieceLen,
		Pieces: make([]metainfo.Hash, pieces), Single: true,
		Files: []metainfo.File{{Length: int64(pieces) * pieceLen}}}
}

func TestLedgerLRUOrderAndPins(t *testing.T) {
	l := NewLedger(geo(20, 10), 40)
	var ev []int
	add := func(i int) {
		ev = append(ev, l.Start(i, false)...)
		ev = append(ev, l.Admit(i)...)
	}
	for i := range 4 {
		add(i)
	}
	l.Touch(0) // read: 0 becomes the most recent, 1 the oldest
	add(4)
	if !slices.Equal(ev, []int{1}) {
		t.Fatalf("evicted %v, want [1]", ev)
	}
	ev = nil
	l.Pin(2, false)
	l.Pin(2, false) // pins nest
	l.Pin(7, false) // pinned before it is present
	add(5)
	add(6)
	add(7)
	if !l.Present(2) || !l.Present(7) {
		t.Fatalf("pinned pieces evicted: 2=%v 7=%v (evicted %v)", l.Present(2), l.Present(7), ev)
	}
	ev = append(ev, l.Unpin(2, false)...)
	if !l.Present(2) {
		t.Fatal("piece 2 evicted with a pin left")
	}
	ev = append(ev, l.Unpin(2, false)...)
	ev = append(ev, l.Unpin(7, false)...)
	// Unpinned pieces become the most recent: they stay, older ones go.
	if !l.Present(2) || !l.Present(7) {
		t.Fatal("pieces just unpinned were evicted first")
	}
	if l.PresentBytes() != 40 || l.Used() != 40 {
		t.Fatalf("PresentBytes %d Used %d, want 40", l.PresentBytes(), l.Used())
	}
	for _, i := range ev {
		if l.Present(i) {
			t.Fatalf("evicted piece %d still present", i)
		}
	}
}

// Oldest passes over pinned pieces, and Evictable says when it has nothing to find.
func TestLedgerOldestSkipsPins(t *testing.T) {
	l := NewLedger(geo(10, 10), 0)
	if l.Evictable() {
		t.Fatal("an empty ledger has something to evict")
	}
	for i := range 3 {
		l.Pin(i, i == 1)
		l.Start(i, false)
		l.Admit(i)
	}
	if l.Evictable() {
		t.Fatal("three pinned pieces are evictable")
	}
	if _, _, ok := l.Oldest(); ok {
		t.Fatal("Oldest found a pinned piece")
	}
	l.Unpin(1, true) // 1 becomes the most recent, and the only evictable piece
	if i, _, ok := l.Oldest(); !ok || i != 1 || !l.Evictable() {
		t.Fatalf("Oldest = %d, %v; Evictable %v; want piece 1", i, ok, l.Evictable())
	}
	l.Unpin(0, false)
	_, s0, _ := l.Oldest()
	if i, _, _ := l.Oldest(); i != 1 {
		t.Fatalf("Oldest = %d after unpinning 0, want 1 (released pieces are the most recent)", i)
	}
	l.Touch(1)
	if i, s, _ := l.Oldest(); i != 0 || s <= s0 {
		t.Fatalf("Oldest = %d stamp %d after touching 1, want 0 with a stamp after %d", i, s, s0)
	}
}

func TestLedgerOverPinned(t *testing.T) {
	l := NewLedger(geo(10, 10), 20)
	for i := range 3 {
		l.Pin(i, false)
		if i < 2 && !l.Fits(i, false) {
			t.Fatalf("piece %d does not fit in an empty cache", i)
		}
		l.Start(i, false)
		l.Admit(i) // admitted over the bound: a reader waits for it
	}
	if l.PresentCount() != 3 {
		t.Fatalf("have %d pieces, want the 3 pinned", l.PresentCount())
	}
	if l.Fits(5, false) || l.Room() >= 0 {
		t.Fatalf("Fits(5)=%v Room=%d with the cache full of pins", l.Fits(5, false), l.Room())
	}
	// A read blocked on piece 5 may push readahead out; nothing else may.
	if !l.Fits(5, true) || !l.CanEverFit(5) {
		t.Fatal("a hard start does not fit past soft pins")
	}
	ev := l.Start(5, true)
	if len(ev) != 2 || l.Used() > 20 {
		t.Fatalf("hard start evicted %v, used %d", ev, l.Used())
	}
	l.Admit(5)
	// Hard pins hold against everything: a piece that cannot fit beside them never will.
	l.Pin(5, true)
	l.Pin(0, true) // not present any more; a hard pin on a missing piece costs no room
	if !l.CanEverFit(0) {
		t.Fatal("CanEverFit(0) false with one 10-byte hard-pinned piece in 20")
	}
	l.Pin(2, true)
	if l.Present(2) && l.CanEverFit(0) {
		t.Fatal("CanEverFit(0) true with the bound full of hard pins")
	}
	if ev := l.Unpin(5, true); len(ev) != 0 && slices.Contains(ev, 2) {
		t.Fatalf("Unpin evicted hard-pinned piece 2: %v", ev)
	}
}

func TestLedgerBoundChanges(t *testing.T) {
	l := NewLedger(geo(10, 10), 0)
	have := bitfield.New(10)
	for i := range 10 {
		have.Set(i)
	}
	if ev := l.Load(have); len(ev) != 0 {
		t.Fatalf("unbounded Load evicted %v", ev)
	}
	l.Pin(9, false)
	ev := l.SetBound(35)
	if !slices.Equal(ev, []int{0, 1, 2, 3, 4, 5, 6}) || l.PresentBytes() != 30 {
		t.Fatalf("SetBound(35) evicted %v, present %d", ev, l.PresentBytes())
	}
	if !l.Idle(0) || l.Idle(9) || !l.Idle(-1) || !l.Idle(10) {
		t.Fatal("Idle wrong")
	}
	// A piece in flight counts from its start: the oldest unpinned piece makes room.
	if ev := l.Start(0, false); !slices.Equal(ev, []int{7}) {
		t.Fatalf("Start(0) evicted %v, want [7]", ev)
	}
	if l.Idle(0) || !l.InFlight(0) {
		t.Fatal("a piece in flight counts as idle")
	}
	l.Abort(0)
	if !l.Idle(0) || l.Used() != 20 {
		t.Fatalf("after Abort: idle=%v used=%d", l.Idle(0), l.Used())
	}
	if ev := l.SetBound(0); len(ev) != 0 || l.Room() < 1<<40 {
		t.Fatalf("unbounding evicted %v, room %d", ev, l.Room())
	}
}

func TestBoundedFailedPieceFreed(t *testing.T) {
	const pieceLen = 64 * kib
	info, data := makeTorrent(t, "f", pieceLen, true, []fileSpec{{"", 4 * pieceLen, false}})
	dir := t.TempDir()
	o := newOwner(t, dir, info, 2*pieceLen)
	bad := bytes.Clone(data)
	bad[5] ^= 1
	o.start(0)
	writePiece(t, o.s, bad, 0, nil)
	verify(t, o.s, 0, false)
	o.l.Abort(0)
	o.evict([]int{0})
	if u := diskUsage(t, dir); u != 0 {
		t.Fatalf("failed piece still uses %d bytes", u)
	}
}

// Reopening a cache with more data than the bound: Load trims it.
func TestBoundedLoadTrims(t *testing.T) {
	const pieceLen = 32 * kib
	info, data := makeTorrent(t, "t", pieceLen, true, []fileSpec{{"", 10 * pieceLen, false}})
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	o := newOwner(t, dir, info, 3*pieceLen)
	have, err := o.s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.evict(o.l.Load(have))
	if got := o.l.PresentCount(); got != 3 {
		t.Fatalf("have %d pieces after Load, want 3", got)
	}
	if len(o.evicted) != 7 {
		t.Fatalf("Load evicted %v, want 7 pieces", o.evicted)
	}
	if u := diskUsage(t, dir); u > 3*pieceLen {
		t.Fatalf("disk use %d over bound", u)
	}
}

// Pieces whose edges fall inside a file-system block: evicting one must free the shared
// block only when its neighbour is idle, never zero a neighbour being admitted or stored.
func TestBoundedUnalignedNeighbours(t *testing.T) {
	const pieceLen = 16 * kib
	// A 5000-byte first file puts every later piece edge mid-block in file b.
	info, data := makeTorrent(t, "u", pieceLen, false, []fileSpec{{"a", 5000, false}, {"b", 10 * pieceLen, false}})
	dir := t.TempDir()
	o := newOwner(t, dir, info, pieceLen)
	for i := range info.NumPieces() {
		o.add(i, data) // evicts piece i-1, whose last block piece i shares
		p := make([]byte, info.PieceSize(i))
		off := info.PieceOffset(i)
		if _, err := o.s.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+int64(len(p))]) {
			t.Fatalf("piece %d damaged by evicting its neighbour (err %v)", i, err)
		}
		if u := diskUsage(t, dir); u > pieceLen+2*4096 {
			t.Fatalf("after piece %d disk use %d: evicted edge blocks leak", i, u)
		}
	}
}
