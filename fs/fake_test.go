package fs

import (
	"context"
	"errors"
	"sync"
	"time"

	"torrentfs/metainfo"
)

// fakeTorrent holds a torrent's bytes in memory; pieces become available when a test says.
type fakeTorrent struct {
	info *metainfo.Info
	data []byte

	mu      sync.Mutex
	have    []bool
	ready   []chan struct{}
	wants   map[int]int // head -> number of pieces wanted
	waiting int
}

type fakeFile struct {
	path []string
	n    int64
	pad  bool
}

func newFake(name string, pieceLen int64, files ...fakeFile) *fakeTorrent {
	info := &metainfo.Info{Name: name, PieceLength: pieceLen, Single: len(files) == 1 && files[0].path == nil}
	for _, f := range files {
		info.Files = append(info.Files, metainfo.File{Path: f.path, Length: f.n, Offset: info.TotalLength, Padding: f.pad})
		info.TotalLength += f.n
	}
	np := int((info.TotalLength + pieceLen - 1) / pieceLen)
	info.Pieces = make([]metainfo.Hash, np)
	ft := &fakeTorrent{info: info, data: make([]byte, info.TotalLength), have: make([]bool, np), ready: make([]chan struct{}, np), wants: map[int]int{}}
	for i := range ft.data {
		ft.data[i] = byte(i*13 + i>>9)
	}
	for _, f := range info.Files {
		if f.Padding {
			clear(ft.data[f.Offset : f.Offset+f.Length])
		}
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
	f.wants[head] = len(due)
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

func (f *fakeTorrent) blocked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

func (f *fakeTorrent) numWants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.wants)
}
