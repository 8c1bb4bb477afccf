package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Disk workers write, verify and read different pieces at once while readers pin and read
// whatever is present. A read that succeeds must return the right bytes, even while
// bounded mode evicts underneath.
func TestConcurrentUse(t *testing.T) {
	for _, bound := range []int64{0, 6 * 32 * kib} {
		name := "unbounded"
		if bound > 0 {
			name = "bounded"
		}
		t.Run(name, func(t *testing.T) {
			files := []fileSpec{{"a", 200*kib + 11, false}, {"b", 1, false}, {".pad/x", 7, true}, {"c", 500 * kib, false}}
			info, data := makeTorrent(t, "c", 32*kib, false, files)
			s := open(t, t.TempDir(), info, Options{MaxBytes: bound, MaxOpenFiles: 2})
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
						if ok, err := s.VerifyPiece(i); err != nil || !ok {
							errc <- errors.Join(err, errors.New("piece failed"))
							return
						}
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
						off := rng.Int64N(info.TotalLength)
						n := min(int64(len(buf)), info.TotalLength-off)
						first, _ := info.PieceRange(off, n)
						if r == 0 {
							s.Pin(first)
						}
						_, err := s.ReadAt(buf[:n], off)
						if r == 0 {
							s.Unpin(first)
						}
						switch {
						case errors.Is(err, ErrNotPresent):
						case err != nil:
							errc <- err
							return
						case !bytes.Equal(buf[:n], data[off:off+n]):
							errc <- errors.New("read returned wrong bytes")
							return
						default:
							goodReads.Add(1)
						}
						s.Have()
						s.Room()
						s.TakeEvictions()
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
			// Now quiet: every piece the storage claims must read back right.
			have := s.Have()
			if have.Count() == 0 {
				t.Fatal("no piece present after the downloads")
			}
			for i := range info.NumPieces() {
				if !have.Has(i) {
					continue
				}
				p := make([]byte, info.PieceSize(i))
				off := info.PieceOffset(i)
				if _, err := s.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+int64(len(p))]) {
					t.Errorf("ReadAt of present piece %d: %v", i, err)
				}
			}
			if bound == 0 && !s.Complete() {
				t.Error("not complete after all pieces verified")
			}
			// Full, nothing pinned: within one (short last) piece of the bound.
			if b := s.BytesCompleted(); bound > 0 && (b > bound || b <= bound-info.PieceLength) {
				t.Errorf("BytesCompleted %d, want about the bound %d", b, bound)
			}
		})
	}
}
