package reader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

func mustNew(t *testing.T, ft *fakeTorrent, file int, o Options) *Head {
	t.Helper()
	h, err := New(ft, file, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// clockedHead opens a head on file of ft, whose pieces are all there, with a clock the
// test drives.
func clockedHead(t *testing.T, ft *fakeTorrent, file int, o Options) (*fakeTorrent, *clock, *Head) {
	t.Helper()
	ft.ProvideAll()
	clk := newClock()
	o.Now = clk.Now
	return ft, clk, mustNew(t, ft, file, o)
}

// read reads n bytes at off and checks them against the torrent's data.
func read(t *testing.T, h *Head, ft *fakeTorrent, off int64, n int) {
	t.Helper()
	p := make([]byte, n)
	got, err := h.ReadAt(context.Background(), p, off)
	if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) > h.Size()) {
		t.Fatalf("read %d at %d: %v", n, off, err)
	}
	want := ft.Data()[h.file.Offset+off:][:got]
	if !bytes.Equal(p[:got], want) {
		t.Fatalf("read %d at %d: wrong bytes", n, off)
	}
}

// span is the number of bytes a head's wants cover.
func span(ft *fakeTorrent, id int) int64 {
	w, ok := ft.WantsOf(id)
	if !ok {
		return 0
	}
	return int64(len(w.Due)) * ft.Info().PieceLength
}

func TestSequentialReadsGrowWindow(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 256*mib), 0, Options{MinWindow: 2 * mib, MaxWindow: 64 * mib, WindowTime: 10 * time.Second})
	read(t, h, ft, 0, 128*kib)
	id := h.main.id
	start := span(ft, id)
	if start < 2*mib || start > 3*mib {
		t.Fatalf("first window covers %d bytes, want about MinWindow", start)
	}
	prev := start
	// 128 KiB every 50 ms is 2.5 MiB/s: 25 MiB of window at 10 s.
	var off int64 = 128 * kib
	for range 200 {
		clk.advance(50 * time.Millisecond)
		read(t, h, ft, off, 128*kib)
		off += 128 * kib
		if s := span(ft, id); s < prev-ft.Info().PieceLength {
			t.Fatalf("window shrank from %d to %d at %d", prev, s, off)
		} else {
			prev = max(prev, s)
		}
	}
	if prev < 20*mib || prev > 64*mib+mib {
		t.Fatalf("window after 25 MiB at 2.5 MiB/s covers %d bytes, want 20..65 MiB", prev)
	}
	w, _ := ft.WantsOf(id)
	// Wants are re-sent when the window moved by an eighth, so they may lag a little.
	at := int((off - 128*kib) / (256 * kib))
	if w.First > at || at-w.First > len(w.Due)/8 {
		t.Errorf("wants start at piece %d, reads are at piece %d", w.First, at)
	}
	if w.Due[at-w.First].After(clk.Now()) {
		t.Errorf("piece under the read due %v, after now %v", w.Due[at-w.First], clk.Now())
	}
	for k := 1; k < len(w.Due); k++ {
		if w.Due[k].Before(w.Due[k-1]) {
			t.Fatalf("due times out of order at %d", k)
		}
	}
	// Piece 40 MiB ahead... at 2.5 MiB/s is due about 16 s out, not at once.
	if last := w.Due[len(w.Due)-1]; last.Sub(clk.Now()) < 5*time.Second {
		t.Errorf("window's last piece due in %v; want it spread by the read rate", last.Sub(clk.Now()))
	}

	// The window is bounded by MaxWindow however fast the reader is.
	for range 100 {
		clk.advance(time.Millisecond)
		read(t, h, ft, off, 128*kib)
		off += 128 * kib
	}
	if s := span(ft, id); s > 64*mib+2*ft.Info().PieceLength {
		t.Errorf("window covers %d bytes, above MaxWindow", s)
	}
}

// TestWindowFollowsAFasterCopy: a copy that reads slowly while the download ramps up and
// then ten times faster gets the window of its new rate within a second or two, not of
// its average since it began.
func TestWindowFollowsAFasterCopy(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 256*mib), 0, Options{MinWindow: 2 * mib, MaxWindow: 128 * mib, WindowTime: 10 * time.Second})
	var off int64
	readFor := func(d, every time.Duration) {
		for end := clk.Now().Add(d); clk.Now().Before(end); {
			read(t, h, ft, off, 128*kib)
			off += 128 * kib
			clk.advance(every)
		}
	}
	readFor(3*time.Second, 125*time.Millisecond)   // 1 MiB/s
	readFor(2*time.Second, 12500*time.Microsecond) // 10 MiB/s
	// The average since the start is 4.6 MiB/s: 46 MiB of window. The last seconds'
	// rate, 10 MiB/s, asks for 100.
	if s := span(ft, h.main.id); s < 90*mib {
		t.Fatalf("window after two seconds at 10 MiB/s covers %d MiB, want the 100 MiB of that rate", s/mib)
	}
}

func TestSeekMovesWants(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 128*mib), 0, Options{MinWindow: 2 * mib, MaxWindow: 32 * mib, WindowTime: 2 * time.Second})
	for off := int64(0); off < 16*mib; off += 128 * kib {
		clk.advance(10 * time.Millisecond)
		read(t, h, ft, off, 128*kib)
	}
	oldMain := h.main.id
	if s := span(ft, oldMain); s < 16*mib {
		t.Fatalf("window before the seek covers %d bytes; want it grown", s)
	}
	// Seek to 100 MiB: the piece under the read is wanted now, at once.
	clk.advance(10 * time.Millisecond)
	read(t, h, ft, 100*mib, 128*kib)
	if h.side == nil {
		t.Fatal("far read opened no side stream")
	}
	w, ok := ft.WantsOf(h.side.id)
	if !ok || w.First != 400 || !w.Due[0].Equal(clk.Now()) {
		t.Fatalf("after seek wants %+v, want piece 400 due now", w)
	}
	// Reading on from there (slower) makes it the main stream; the old window is dropped.
	for off := int64(100*mib + 128*kib); off < 104*mib; off += 128 * kib {
		clk.advance(100 * time.Millisecond)
		read(t, h, ft, off, 128*kib)
	}
	if h.side != nil || h.main.id == oldMain {
		t.Fatal("sequential reads after a seek did not promote the side stream")
	}
	if _, ok := ft.WantsOf(oldMain); ok {
		t.Error("old main window still wanted after the seek was confirmed")
	}
	w, _ = ft.WantsOf(h.main.id)
	if w.First < 400 || w.First > 416 {
		t.Errorf("main wants start at piece %d, want near 416", w.First)
	}
	if s := span(ft, h.main.id); s > 8*mib {
		t.Errorf("window after seek covers %d bytes; want it collapsed, then regrowing", s)
	}
}

func TestProbeKeepsMainWindow(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 128*mib), 0, Options{MinWindow: 2 * mib, MaxWindow: 32 * mib, SideTTL: 5 * time.Second})
	var off int64
	for ; off < 16*mib; off += 128 * kib {
		clk.advance(20 * time.Millisecond)
		read(t, h, ft, off, 128*kib)
	}
	mainID := h.main.id
	before, _ := ft.WantsOf(mainID)
	// A player reads the index at the end of the file, twice, then comes back.
	clk.advance(20 * time.Millisecond)
	read(t, h, ft, 128*mib-200*kib, 64*kib)
	read(t, h, ft, 128*mib-136*kib, 136*kib)
	after, _ := ft.WantsOf(mainID)
	if h.main.id != mainID || after.First != before.First || len(after.Due) != len(before.Due) {
		t.Fatalf("probe changed the main window: %d+%d -> %d+%d", before.First, len(before.Due), after.First, len(after.Due))
	}
	if h.side == nil {
		t.Fatal("probe got no side stream")
	}
	if w, ok := ft.WantsOf(h.side.id); !ok || w.First != 511 {
		t.Fatalf("probe wants %+v, want the last piece", w)
	}
	clk.advance(20 * time.Millisecond)
	read(t, h, ft, off, 128*kib)
	if h.main.id != mainID || h.main.window < int64(len(before.Due)-1)*ft.Info().PieceLength-2*mib {
		t.Fatalf("return from probe reset the main window")
	}
	// The side stream lingers for SideTTL, then goes at the next read.
	sideID := h.side.id
	clk.advance(6 * time.Second)
	read(t, h, ft, off+128*kib, 128*kib)
	if _, ok := ft.WantsOf(sideID); ok || h.side != nil {
		t.Error("idle side stream still wanted after SideTTL")
	}
}

func TestCancelledReadLeavesWants(t *testing.T) {
	ft := newFake(256*kib, 8*mib)
	h := mustNew(t, ft, 0, Options{MinWindow: mib})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.ReadAt(ctx, make([]byte, 4096), 3*mib)
		errc <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the read to block", func() bool { return ft.Blocked() > 0 })
	h.mu.Lock()
	id := h.main.id
	h.mu.Unlock()
	before, _ := ft.WantsOf(id)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read returned %v, want context.Canceled", err)
	}
	after, ok := ft.WantsOf(id)
	if !ok || after.First != before.First || len(after.Due) != len(before.Due) {
		t.Fatalf("cancel changed wants: %+v -> %+v", before, after)
	}
	// A retry finds the same head and completes once the piece arrives.
	go func() {
		_, err := h.ReadAt(context.Background(), make([]byte, 4096), 3*mib)
		errc <- err
	}()
	ft.Provide(12)
	if err := <-errc; err != nil {
		t.Fatalf("retried read: %v", err)
	}
	if h.main.id != id {
		t.Error("retried read started a new stream")
	}
}

func TestEOF(t *testing.T) {
	ft := newFake(64*kib, 1000*kib+123)
	ft.ProvideAll()
	h := mustNew(t, ft, 0, Options{})
	size := h.Size()
	for _, tc := range []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"inside", 0, 4096, 4096, nil},
		{"last byte exactly", size - 10, 10, 10, nil},
		{"straddles end", size - 10, 4096, 10, io.EOF},
		{"at end", size, 4096, 0, io.EOF},
		{"past end", size + 5000, 1, 0, io.EOF},
		{"empty at end", size, 0, 0, nil},
		{"empty inside", 17, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			n, err := h.ReadAt(context.Background(), p, tc.off)
			if n != tc.wantN || !errors.Is(err, tc.wantErr) && err != tc.wantErr {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, %v", tc.n, tc.off, n, err, tc.wantN, tc.wantErr)
			}
			if n > 0 && !bytes.Equal(p[:n], ft.Data()[tc.off:tc.off+int64(n)]) {
				t.Fatal("wrong bytes")
			}
		})
	}
	if _, err := h.ReadAt(context.Background(), make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
}

func TestReadsSpanPiecesAndFiles(t *testing.T) {
	// Files of odd lengths so pieces straddle file boundaries; one is empty.
	lengths := []int64{100*kib + 3, 0, 700*kib + 11, 64 * kib, 333 * kib}
	ft := newFake(64*kib, lengths...)
	for fi, n := range lengths {
		h := mustNew(t, ft, fi, Options{MinWindow: 64 * kib})
		ft.ProvideAll()
		for _, r := range []struct{ off, n int64 }{{0, n}, {n / 3, n / 2}, {max(n-70*kib, 0), 70 * kib}, {1, 129 * kib}} {
			p := make([]byte, r.n)
			got, err := h.ReadAt(context.Background(), p, r.off)
			wantN := min(max(n-r.off, 0), r.n)
			if int64(got) != wantN || err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("file %d read %d at %d: %d, %v", fi, r.n, r.off, got, err)
			}
			if !bytes.Equal(p[:got], ft.Data()[ft.Info().Files[fi].Offset+r.off:][:got]) {
				t.Fatalf("file %d read %d at %d: wrong bytes", fi, r.n, r.off)
			}
		}
	}
	// Wants never reach pieces outside the file being read.
	ft2 := newFake(64*kib, lengths...)
	h := mustNew(t, ft2, 2, Options{MinWindow: 4 * mib})
	ft2.ProvideAll()
	read(t, h, ft2, 0, 4096)
	w, _ := ft2.WantsOf(h.main.id)
	f := ft2.Info().Files[2]
	first, last := ft2.Info().PieceRange(f.Offset, f.Length)
	if w.First != first || w.First+len(w.Due)-1 != last {
		t.Errorf("wants %d..%d, file 2 is pieces %d..%d", w.First, w.First+len(w.Due)-1, first, last)
	}
}

func TestTwoHeadsKeepOwnWindows(t *testing.T) {
	ft := newFake(256*kib, 64*mib)
	ft.ProvideAll()
	clk := newClock()
	o := Options{MinWindow: 2 * mib, Now: clk.Now}
	a := mustNew(t, ft, 0, o)
	b := mustNew(t, ft, 0, o)
	for k := int64(0); k < 32; k++ {
		clk.advance(10 * time.Millisecond)
		read(t, a, ft, k*128*kib, 128*kib)
		read(t, b, ft, 40*mib+k*128*kib, 128*kib)
	}
	if a.side != nil || b.side != nil {
		t.Fatal("interleaved heads disturbed each other")
	}
	wa, _ := ft.WantsOf(a.main.id)
	wb, _ := ft.WantsOf(b.main.id)
	if wa.First > 16 || wb.First < 160 {
		t.Fatalf("head a wants from %d, head b from %d", wa.First, wb.First)
	}
	bid := b.main.id
	a.Close()
	if _, ok := ft.WantsOf(bid); !ok {
		t.Error("closing one head cleared the other's wants")
	}
}

func TestPrefetchAndClose(t *testing.T) {
	ft := newFake(256*kib, 3*mib, 64*mib, 5*mib)
	clk := newClock()
	h := mustNew(t, ft, 1, Options{PrefetchBytes: mib, PrefetchDelay: time.Second, Now: clk.Now})
	if n := ft.NumWants(); n != 0 {
		t.Fatalf("%d heads with wants after open, before any read; want none", n)
	}
	ft.Provide(20)
	read(t, h, ft, 8*256*kib+100, 4096)
	head, ok1 := ft.WantsOf(h.headID)
	tail, ok2 := ft.WantsOf(h.tailID)
	if !ok1 || !ok2 {
		t.Fatal("no head or tail prefetch")
	}
	if head.First != 12 || len(head.Due) != 4 || tail.First != 264 || len(tail.Due) != 4 {
		t.Errorf("prefetch head %d+%d tail %d+%d, want 12+4 and 264+4", head.First, len(head.Due), tail.First, len(tail.Due))
	}
	if !head.Due[0].Equal(clk.Now().Add(time.Second)) {
		t.Errorf("prefetch due %v, want a second from now", head.Due[0])
	}
	// A seek's first read: its own piece, then the head and tail prefetch, then its window.
	if order := ft.WantsOrder(); len(order) < 4 || order[0] == h.headID || order[0] == h.tailID ||
		order[1] != h.headID || order[2] != h.tailID || order[3] != order[0] {
		t.Errorf("SetWants by head, in order: %v (prefetch ids %d, %d); want the read's stream, the prefetch, the stream again", order, h.headID, h.tailID)
	} else if w, _ := ft.WantsOf(order[0]); w.First != 20 || len(w.Due) < 2 {
		t.Errorf("the stream wants %d+%d after the first read, want piece 20 and a window", w.First, len(w.Due))
	}
	ft.ProvideAll()
	read(t, h, ft, 0, 4096)
	if ft.NumWants() != 4 {
		t.Fatalf("%d heads with wants, want 4 (two streams, the prefetch's two)", ft.NumWants())
	}
	h.Close()
	if n := ft.NumWants(); n != 0 {
		t.Errorf("%d heads still want pieces after Close", n)
	}
	if _, err := h.ReadAt(context.Background(), make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

var errFakeClosed = errors.New("fake torrent closed")

// stoppedTorrent fails every read, like a swarm torrent that has been closed.
type stoppedTorrent struct{ *fakeTorrent }

func (stoppedTorrent) ReadAt(context.Context, []byte, int64) (int, error) {
	return 0, errFakeClosed
}

func TestTorrentStopped(t *testing.T) {
	ft := newFake(256*kib, mib)
	h, err := New(stoppedTorrent{ft}, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = h.ReadAt(context.Background(), make([]byte, 10), 0)
	if !errors.Is(err, errFakeClosed) {
		t.Fatalf("read on a stopped torrent: %v", err)
	}
}

func TestNewBadFile(t *testing.T) {
	ft := newFake(256*kib, mib)
	if _, err := New(ft, 1, Options{}); err == nil {
		t.Error("New accepted a file index out of range")
	}
}

func TestIDsUnique(t *testing.T) {
	seen := map[int]bool{}
	for range 1000 {
		id := NewID()
		if seen[id] {
			t.Fatalf("id %d given twice", id)
		}
		seen[id] = true
	}
}

func TestInFlightReadKeepsItsPieceWanted(t *testing.T) {
	ft := newFake(256*kib, 64*mib)
	h := mustNew(t, ft, 0, Options{MinWindow: mib})
	errc := make(chan error, 1)
	go func() {
		_, err := h.ReadAt(context.Background(), make([]byte, 4096), 20*mib)
		errc <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the read to block", func() bool { return ft.Blocked() > 0 })
	// Reading on elsewhere is a seek: the stream that asked for piece 80 is dropped.
	ft.Provide(160, 161, 162, 163, 164, 165)
	for off := int64(40 * mib); off < 41*mib+256*kib; off += 128 * kib {
		read(t, h, ft, off, 128*kib)
	}
	if h.main.pos < 40*mib {
		t.Fatal("the seek did not take over the main stream")
	}
	if !ft.Wanted(80) {
		t.Fatal("piece 80 not wanted while a read waits for it")
	}
	ft.Provide(80)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A prefetch still missing when reads go on moves its due time on, so it never becomes
// overdue and sorts before a read that blocks now; once its pieces are in it stops.
func TestPrefetchStaysBehindReads(t *testing.T) {
	ft := newFake(256*kib, 64*mib)
	clk := newClock()
	h := mustNew(t, ft, 0, Options{PrefetchBytes: mib, PrefetchDelay: time.Second, Now: clk.Now})
	ft.Provide(100, 101)
	clk.advance(3 * time.Second) // the prefetch is long overdue
	read(t, h, ft, 100*256*kib, 4096)
	head, _ := ft.WantsOf(h.headID)
	if want := clk.Now().Add(time.Second); !head.Due[0].Equal(want) {
		t.Fatalf("after a read, the missing prefetch is due %v; want a second after the read", head.Due[0].Sub(clk.Now()))
	}
	ft.ProvideAll()
	clk.advance(3 * time.Second)
	read(t, h, ft, 200*256*kib, 4096)
	if again, _ := ft.WantsOf(h.headID); !again.Due[0].Equal(head.Due[0]) {
		t.Fatal("a prefetch whose pieces are in was asked for again")
	}
}

// A player reads on one thread: once it reads far away, the piece the main stream wanted
// now (under a read the kernel or an HTTP handler made ahead of it) must not stay ahead of
// the far read, and it is wanted now again when the player comes back.
func TestFarReadYieldsMainWants(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 64*mib), 0, Options{MinWindow: 2 * mib})
	read(t, h, ft, 0, 128*kib)
	mainID := h.main.id
	w, _ := ft.WantsOf(mainID)
	if !w.Due[0].Equal(clk.Now()) {
		t.Fatalf("main's first piece due %v, want now (%v)", w.Due[0], clk.Now())
	}
	clk.advance(5 * time.Millisecond)
	read(t, h, ft, 60*mib, 64*kib)
	side, _ := ft.WantsOf(h.side.id)
	w, _ = ft.WantsOf(mainID)
	if !side.Due[0].Equal(clk.Now()) {
		t.Fatalf("far read's piece due %v, want now", side.Due[0])
	}
	if got := w.Due[0].Sub(clk.Now()); got < yieldDelay {
		t.Fatalf("after a far read main's first piece is due in %v, want at least %v", got, yieldDelay)
	}
	for k := 1; k < len(w.Due); k++ {
		if w.Due[k].Before(w.Due[k-1]) {
			t.Fatalf("main's yielded wants out of order at %d: %v", k, w.Due)
		}
	}
	// A second far read near the first changes nothing more for main.
	clk.advance(5 * time.Millisecond)
	read(t, h, ft, 60*mib+64*kib, 64*kib)
	if w2, _ := ft.WantsOf(mainID); !w2.Due[0].Equal(w.Due[0]) {
		t.Fatalf("main re-timed again: %v -> %v", w.Due[0], w2.Due[0])
	}
	// Back on main: its piece is wanted now again, and the side's pieces go behind it.
	clk.advance(5 * time.Millisecond)
	read(t, h, ft, 128*kib, 128*kib)
	if w, _ = ft.WantsOf(mainID); !w.Due[0].Equal(clk.Now()) {
		t.Fatalf("back on main, its first piece is due %v, want now (%v)", w.Due[0], clk.Now())
	}
	if side, _ = ft.WantsOf(h.side.id); side.Due[0].Sub(clk.Now()) < yieldDelay {
		t.Fatalf("back on main, the side's first piece is due in %v, want at least %v", side.Due[0].Sub(clk.Now()), yieldDelay)
	}
}

// TestRestart: a new request far from both streams drops them (their wants go), one that
// continues either keeps both.
func TestRestart(t *testing.T) {
	ft, clk, h := clockedHead(t, newFake(256*kib, 64*mib), 0, Options{MinWindow: 2 * mib})
	read(t, h, ft, 0, 128*kib)
	clk.advance(5 * time.Millisecond)
	read(t, h, ft, 40*mib, 64*kib)
	mainID, sideID := h.main.id, h.side.id
	// Continuing the side, or main: nothing changes.
	h.Restart(40*mib + 64*kib)
	h.Restart(128 * kib)
	if _, ok := ft.WantsOf(mainID); !ok || h.main == nil || h.main.id != mainID {
		t.Fatal("a request continuing main dropped it")
	}
	if _, ok := ft.WantsOf(sideID); !ok || h.side == nil || h.side.id != sideID {
		t.Fatal("a request continuing the side dropped it")
	}
	// Far from both: both go, and the next read starts a main stream there.
	h.Restart(20 * mib)
	if _, ok := ft.WantsOf(mainID); ok {
		t.Error("main's wants stayed after a restart far from it")
	}
	if _, ok := ft.WantsOf(sideID); ok {
		t.Error("the side's wants stayed after a restart far from it")
	}
	clk.advance(5 * time.Millisecond)
	read(t, h, ft, 20*mib, 64*kib)
	if h.main == nil || h.main.id == mainID || h.side != nil {
		t.Fatalf("after a restart the read did not start a fresh main stream (main %v, side %v)", h.main, h.side)
	}
	w, _ := ft.WantsOf(h.main.id)
	if !w.Due[0].Equal(clk.Now()) {
		t.Fatalf("the new main's first piece is due %v, want now", w.Due[0])
	}
}
