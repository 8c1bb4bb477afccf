package reader

import (
	"sync"
	"time"

	"torrentfs/internal/faketorrent"
	"torrentfs/metainfo"
)

// fakeTorrent holds a torrent's bytes; pieces become available when a test says so.
type fakeTorrent = faketorrent.Torrent

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
	info.Pieces = make([]metainfo.Hash, (info.TotalLength+pieceLen-1)/pieceLen)
	data := make([]byte, info.TotalLength)
	// A pattern whose period (a prime) lines up with no piece or file boundary; filled by
	// doubling copies because the race detector makes a byte loop over 256 MiB slow.
	const period = 1<<20 + 7
	for i := range min(len(data), period) {
		data[i] = byte(i*7 + i>>11)
	}
	for n := period; n < len(data); n *= 2 {
		copy(data[n:], data[:n])
	}
	return faketorrent.New(info, data)
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
