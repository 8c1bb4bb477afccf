package cache

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
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

func takeAll(s *Storage) []int {
	select {
	case <-s.Evictions():
	default:
		return nil
	}
	return s.TakeEvictions()
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
			s := open(t, dir, info, Options{MaxBytes: maxBytes})
			var evicted []int
			for i := range info.NumPieces() {
				writePiece(t, s, data, i, nil)
				// Pieces in flight count against the bound from their first block.
				if u := diskUsage(t, dir); u > maxBytes+g.slack {
					t.Fatalf("after writing piece %d disk use %d > bound %d", i, u, maxBytes)
				}
				verify(t, s, i, true)
				if u := diskUsage(t, dir); u > maxBytes+g.slack {
					t.Fatalf("after verifying piece %d disk use %d > bound %d", i, u, maxBytes)
				}
				if b := s.BytesCompleted(); b > maxBytes {
					t.Fatalf("BytesCompleted %d > bound", b)
				}
				evicted = append(evicted, takeAll(s)...)
			}
			// Oldest first: with no reads, pieces leave in the order they came.
			want := make([]int, info.NumPieces()-8)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(evicted, want) {
				t.Fatalf("evicted %v, want %v", evicted, want)
			}
			for i := range info.NumPieces() {
				if s.HasPiece(i) != (i >= info.NumPieces()-8) {
					t.Errorf("piece %d present=%v", i, s.HasPiece(i))
				}
			}
			// What is left still reads back right.
			last := info.NumPieces() - 1
			p := make([]byte, info.PieceSize(last))
			if _, err := s.ReadAt(p, info.PieceOffset(last)); err != nil || !bytes.Equal(p, data[info.PieceOffset(last):]) {
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
	s := open(t, dir, info, Options{MaxBytes: maxBytes})
	// Four pieces at a time are written before any is verified, as a swarm does.
	for i := 0; i < info.NumPieces(); i += 4 {
		for k := i; k < i+4; k++ {
			writePiece(t, s, data, k, nil)
		}
		if u := diskUsage(t, dir); u > maxBytes {
			t.Fatalf("with pieces %d..%d in flight disk use %d > bound %d", i, i+3, u, maxBytes)
		}
		for k := i; k < i+4; k++ {
			verify(t, s, k, true)
		}
		if u := diskUsage(t, dir); u > maxBytes {
			t.Fatalf("after verifying pieces %d..%d disk use %d > bound %d", i, i+3, u, maxBytes)
		}
	}
}

func TestBoundedLRUOrderAndPins(t *testing.T) {
	const pieceLen = 32 * kib
	info, data := makeTorrent(t, "l", pieceLen, true, []fileSpec{{"", 20 * pieceLen, false}})
	s := open(t, t.TempDir(), info, Options{MaxBytes: 4 * pieceLen})
	add := func(i int) {
		t.Helper()
		writePiece(t, s, data, i, nil)
		verify(t, s, i, true)
	}
	read := func(i int) {
		t.Helper()
		p := make([]byte, 10)
		if _, err := s.ReadAt(p, info.PieceOffset(i)+5); err != nil {
			t.Fatalf("read piece %d: %v", i, err)
		}
	}
	for i := range 4 {
		add(i)
	}
	if ev := takeAll(s); ev != nil {
		t.Fatalf("evicted %v before the cache was full", ev)
	}
	read(0) // 0 is now the most recent; 1 the oldest
	add(4)
	if ev := takeAll(s); !slices.Equal(ev, []int{1}) {
		t.Fatalf("evicted %v, want [1]", ev)
	}
	// Pinned pieces survive any amount of churn.
	s.Pin(2)
	s.Pin(2) // pins nest
	s.Pin(7) // pinned before it is present
	for i := 5; i < 15; i++ {
		add(i)
	}
	if !s.HasPiece(2) || !s.HasPiece(7) {
		t.Fatalf("pinned pieces evicted: have 2=%v 7=%v", s.HasPiece(2), s.HasPiece(7))
	}
	read(2)
	s.Unpin(2)
	add(15)
	if !s.HasPiece(2) {
		t.Fatal("piece 2 evicted while still pinned once")
	}
	s.Unpin(2)
	s.Unpin(7)
	// Unpinned pieces become most recent: 2 and 7 outlive the two oldest unpinned.
	add(16)
	add(17)
	if !s.HasPiece(2) || !s.HasPiece(7) {
		t.Fatal("just-unpinned pieces evicted before older ones")
	}
	add(18)
	add(19)
	if s.HasPiece(2) || s.HasPiece(7) {
		t.Fatal("unpinned pieces never evicted")
	}
	if b := s.BytesCompleted(); b != 4*pieceLen {
		t.Fatalf("BytesCompleted %d, want %d", b, 4*pieceLen)
	}
}

func TestBoundedOverPinned(t *testing.T) {
	const pieceLen = 32 * kib
	info, data := makeTorrent(t, "o", pieceLen, true, []fileSpec{{"", 8 * pieceLen, false}})
	dir := t.TempDir()
	s := open(t, dir, info, Options{MaxBytes: 2 * pieceLen})
	for i := range 3 {
		s.Pin(i)
	}
	for i := range 3 {
		if i < 2 && !s.CanAdmit(i) {
			t.Fatalf("CanAdmit(%d) false with room", i)
		}
		writePiece(t, s, data, i, nil)
		verify(t, s, i, true)
	}
	// Three pinned pieces in a two-piece cache: nothing may go, and nothing more fits.
	if s.Have().Count() != 3 {
		t.Fatalf("have %d pieces, want the 3 pinned", s.Have().Count())
	}
	if s.CanAdmit(5) || s.Room() >= 0 {
		t.Fatalf("CanAdmit(5)=%v Room=%d with the cache full of pins", s.CanAdmit(5), s.Room())
	}
	s.Unpin(0)
	if ev := takeAll(s); !slices.Equal(ev, []int{0}) {
		t.Fatalf("after Unpin evicted %v, want [0]", ev)
	}
	if u := diskUsage(t, dir); u > 2*pieceLen {
		t.Fatalf("disk use %d over bound after unpin", u)
	}
}

func TestBoundedFailedPieceFreed(t *testing.T) {
	const pieceLen = 64 * kib
	info, data := makeTorrent(t, "f", pieceLen, true, []fileSpec{{"", 4 * pieceLen, false}})
	dir := t.TempDir()
	s := open(t, dir, info, Options{MaxBytes: 2 * pieceLen})
	bad := bytes.Clone(data)
	bad[5] ^= 1
	writePiece(t, s, bad, 0, nil)
	verify(t, s, 0, false)
	if u := diskUsage(t, dir); u != 0 {
		t.Fatalf("failed piece still uses %d bytes", u)
	}
	writePiece(t, s, data, 1, nil)
	if err := s.Discard(1); err != nil {
		t.Fatal(err)
	}
	if u := diskUsage(t, dir); u != 0 {
		t.Fatalf("discarded piece still uses %d bytes", u)
	}
}

// Reopening a bounded cache with more data than the (new) bound trims it at Check.
func TestBoundedCheckTrims(t *testing.T) {
	const pieceLen = 32 * kib
	info, data := makeTorrent(t, "t", pieceLen, true, []fileSpec{{"", 10 * pieceLen, false}})
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	s := open(t, dir, info, Options{MaxBytes: 3 * pieceLen})
	if err := s.Check(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Have().Count(); got != 3 {
		t.Fatalf("have %d pieces after Check, want 3", got)
	}
	if ev := takeAll(s); len(ev) != 7 {
		t.Fatalf("Check evicted %v, want 7 pieces", ev)
	}
	if u := diskUsage(t, dir); u > 3*pieceLen {
		t.Fatalf("disk use %d over bound", u)
	}
	p := make([]byte, 1)
	if _, err := s.ReadAt(p, 0); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadAt of an evicted piece: %v", err)
	}
}

// Pieces whose edges fall inside a file-system block: evicting one must free the shared
// block only when its neighbour is idle, never zero a neighbour being admitted or stored.
func TestBoundedUnalignedNeighbours(t *testing.T) {
	const pieceLen = 16 * kib
	// A 5000-byte first file puts every later piece edge mid-block in file b.
	info, data := makeTorrent(t, "u", pieceLen, false, []fileSpec{{"a", 5000, false}, {"b", 10 * pieceLen, false}})
	dir := t.TempDir()
	s := open(t, dir, info, Options{MaxBytes: pieceLen})
	for i := range info.NumPieces() {
		writePiece(t, s, data, i, nil)
		verify(t, s, i, true) // evicts piece i-1, whose last block piece i shares
		p := make([]byte, info.PieceSize(i))
		off := info.PieceOffset(i)
		if _, err := s.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+int64(len(p))]) {
			t.Fatalf("piece %d damaged by evicting its neighbour (err %v)", i, err)
		}
		if u := diskUsage(t, dir); u > pieceLen+2*4096 {
			t.Fatalf("after piece %d disk use %d: evicted edge blocks leak", i, u)
		}
	}
}
