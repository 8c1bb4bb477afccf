package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Disk workers write and hash different pieces at once while readers read pieces already
// verified, over a bounded handle cache: every read of a verified piece returns its bytes.
func TestConcurrentUse(t *testing.T) {
	files := []fileSpec{{"a", 200*kib + 11, false}, {"b", 1, false}, {".pad/x", 7, true}, {"c", 500 * kib, false}}
	info, data := makeTorrent(t, "c", 32*kib, false, files)
	s := open(t, t.TempDir(), info, Options{MaxOpenFiles: 2})
	verified := make([]atomic.Bool, info.NumPieces())
	var next atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for {
				i := int(next.Add(1) - 1)
				if i >= info.NumPieces() {
					return
				}
				for _, b := range rng.Perm(info.NumBlocks(i)) {
					off := info.PieceOffset(i) + int64(b)*16*kib
					if err := s.WriteBlock(i, b*16*kib, data[off:off+int64(info.BlockSizeAt(i, b))]); err != nil {
						errc <- err
						return
					}
				}
				if ok, err := s.HashPiece(i); err != nil || !ok {
					errc <- errors.Join(err, errors.New("piece failed"))
					return
				}
				verified[i].Store(true)
			}
		}()
	}
	var readers sync.WaitGroup
	var goodReads atomic.Int64
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			buf := make([]byte, 40*kib)
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(info.NumPieces())
				if !verified[i].Load() {
					continue
				}
				off := info.PieceOffset(i)
				n := min(int64(len(buf)), info.TotalLength-off, info.PieceSize(i))
				if _, err := s.ReadAt(buf[:n], off); err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+n]) {
					errc <- errors.New("read returned wrong bytes")
					return
				}
				goodReads.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("%d reads succeeded during the downloads", goodReads.Load())
	got := make([]byte, info.TotalLength)
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the whole torrent does not read back: %v", err)
	}
}
