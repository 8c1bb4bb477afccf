package reader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"torrentfs/metainfo"
)

// fakeTorrent holds a torrent's bytes; pieces become available when a test says so.
type fakeTorrent struct {
	info *metainfo.Info
	data []byte

	mu      sync.Mutex
	have    []bool
	ready   []chan struct{}
	wants   map[int]wantSet
	waiting int // WaitPiece calls blocked right now
}

type wantSet struct {
	first int
	due   []time.Time
}

var errFakeClosed = errors.New("fake torrent closed")

// newFake makes a torrent of files with the given lengths.
func newFake(pieceLen int64, lengths ...int64) *fakeTorrent {
	info := &metainfo.Info{Name: "t", PieceLength: pieceLen, Single: len(lengths) == 1}
	for i, n := range lengths {
		f := metainfo.File{Length: n, Offset: info.TotalLength}
		if !info.Single {
			f.Path = []string{string(rune('a' + i))}
		}
		info.Files = append(info.Files, f)
		info.TotalLength += n
	}
	np := int((info.TotalLength + pieceLen - 1) / pieceLen)
	info.Pieces = make([]metainfo.Hash, np)
	ft := &fakeTorrent{info: info, data: make([]byte, info.TotalLength), have: make([]bool, np), ready: make([]chan struct{}, np), wants: map[int]wantSet{}}
	// A pattern whose period (a prime) lines up with no piece or file boundary; filled by
	// doubling copies because the race detector makes a byte loop over 256 MiB slow.
	const period = 1<<20 + 7
	for i := range min(len(ft.data), period) {
		ft.data[i] = byte(i*7 + i>>11)
	}
	for n := period; n < len(ft.data); n *= 2 {
		copy(ft.data[n:], ft.data[:n])
	}
	for i := range ft.ready {
		ft.ready[i] = make(chan struct{})
	}
	return ft
}

func (f *fakeTorrent) Info() *metainfo.Info { return f.info }

func (f *fakeTorrent) SetWants(head, first int, due []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(due) == 0 {
		delete(f.wants, head)
		return
	}
	f.wants[head] = wantSet{first, append([]time.Time(nil), due...)}
}

func (f *fakeTorrent) WaitPiece(ctx context.Context, i int) error {
	f.mu.Lock()
	ch := f.ready[i]
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeTorrent) HasPiece(i int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have[i]
}

func (f *fakeTorrent) ReadAt(p []byte, off int64) (int, error) {
	first, last := f.info.PieceRange(off, int64(len(p)))
	for i := first; i <= last; i++ {
		if !f.HasPiece(i) {
			return 0, errors.New("piece not present")
		}
	}
	return copy(p, f.data[off:]), nil
}

// provide makes pieces available.
func (f *fakeTorrent) provide(pieces ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range pieces {
		if !f.have[i] {
			f.have[i] = true
			close(f.ready[i])
		}
	}
}

func (f *fakeTorrent) provideAll() {
	for i := range f.have {
		f.provide(i)
	}
}

func (f *fakeTorrent) wantsOf(head int) (wantSet, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.wants[head]
	return w, ok
}

func (f *fakeTorrent) numWants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.wants)
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// clock is a test clock moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
