// Package faketorrent is an in-memory torrent for the reader and fs tests: it has the method
// set reader.Torrent asks for, and pieces become available only when a test provides them.
// Its mutex guards all of its state.
package faketorrent

import (
	"context"
	"sync"
	"time"

	"torrentfs/metainfo"
)

// Torrent holds a torrent's bytes in memory.
type Torrent struct {
	info *metainfo.Info
	data []byte

	mu      sync.Mutex
	have    []bool
	ready   []chan struct{}
	wants   map[int]Wants
	waiting int         // reads blocked right now
	waitFor map[int]int // reads blocked right now, by the piece they wait for
	reads   int         // the last read's id: negative, apart from the heads' ids
	order   []int       // the heads of SetWants calls that asked for something, in order
}

// Wants is what one head last asked for.
type Wants struct {
	First int
	Due   []time.Time
}

// New serves data (the whole torrent byte stream) with info's geometry; no piece is present.
func New(info *metainfo.Info, data []byte) *Torrent {
	n := info.NumPieces()
	t := &Torrent{info: info, data: data, have: make([]bool, n), ready: make([]chan struct{}, n), wants: map[int]Wants{}}
	for i := range t.ready {
		t.ready[i] = make(chan struct{})
	}
	return t
}

// Info is the torrent's info dictionary.
func (t *Torrent) Info() *metainfo.Info { return t.info }

// Data is the torrent's byte stream.
func (t *Torrent) Data() []byte { return t.data }

// SetWants records a head's wants; empty due clears them.
func (t *Torrent) SetWants(head, first int, due []time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(due) == 0 {
		delete(t.wants, head)
		return
	}
	t.wants[head] = Wants{first, append([]time.Time(nil), due...)}
	t.order = append(t.order, head)
}

// WantsOrder is the heads of the SetWants calls that asked for pieces, in call order.
func (t *Torrent) WantsOrder() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int(nil), t.order...)
}

// waitPiece blocks until piece i is provided or ctx ends.
func (t *Torrent) waitPiece(ctx context.Context, i int) error {
	t.mu.Lock()
	ch := t.ready[i]
	t.waiting++
	if t.waitFor == nil {
		t.waitFor = map[int]int{}
	}
	t.waitFor[i]++
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.waiting--
		t.waitFor[i]--
		t.mu.Unlock()
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HasPiece tells whether piece i was provided.
func (t *Torrent) HasPiece(i int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.have[i]
}

// ReadAt waits until the pieces under [off, off+len(p)) are provided, wanting them now
// (under a read id of its own, as the swarm does) while it waits, then copies the bytes.
func (t *Torrent) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	first, last := t.info.PieceRange(off, int64(len(p)))
	t.mu.Lock()
	t.reads--
	id := t.reads
	t.mu.Unlock()
	due := make([]time.Time, last-first+1)
	for k := range due {
		due[k] = time.Now()
	}
	t.SetWants(id, first, due)
	defer t.SetWants(id, 0, nil)
	for i := first; i <= last; i++ {
		if err := t.waitPiece(ctx, i); err != nil {
			return 0, err
		}
	}
	return copy(p, t.data[off:]), nil
}

// Provide makes pieces available and wakes their waiters.
func (t *Torrent) Provide(pieces ...int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, i := range pieces {
		if !t.have[i] {
			t.have[i] = true
			close(t.ready[i])
		}
	}
}

// ProvideAll makes every piece available.
func (t *Torrent) ProvideAll() {
	for i := range t.have {
		t.Provide(i)
	}
}

// Blocked is the number of reads waiting for a piece right now.
func (t *Torrent) Blocked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waiting
}

// WaitingFor is the number of reads waiting for piece i right now.
func (t *Torrent) WaitingFor(i int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waitFor[i]
}

// WantsOf returns a head's current wants.
func (t *Torrent) WantsOf(head int) (Wants, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.wants[head]
	return w, ok
}

// NumWants is the number of heads with wants.
func (t *Torrent) NumWants() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.wants)
}

// Wanted tells whether some head wants piece i.
func (t *Torrent) Wanted(i int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.wants {
		if w.First <= i && i < w.First+len(w.Due) {
			return true
		}
	}
	return false
}
