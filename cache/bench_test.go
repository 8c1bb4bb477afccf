package cache

import (
	"context"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"torrentfs/metainfo"
)

// benchTorrent is a 256 MiB single-file torrent in 256 KiB pieces with random content.
func benchTorrent(b *testing.B) (*metainfo.Info, []byte) {
	const total, pieceLen = 256 << 20, 256 << 10
	data := make([]byte, total)
	rand.NewChaCha8([32]byte{1}).Read(data)
	info := &metainfo.Info{Name: "bench", PieceLength: pieceLen, Single: true, TotalLength: total,
		Files: []metainfo.File{{Length: total}}, Pieces: make([]metainfo.Hash, total/pieceLen)}
	for i := range info.Pieces {
		info.Pieces[i] = sha1.Sum(data[i*pieceLen : (i+1)*pieceLen])
	}
	return info, data
}

// BenchmarkWriteVerify writes every block of the torrent and verifies every piece, with one
// disk worker and with one per core, as the swarm would.
func BenchmarkWriteVerify(b *testing.B) {
	info, data := benchTorrent(b)
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+itoa(workers), func(b *testing.B) {
			b.SetBytes(info.TotalLength)
			for b.Loop() {
				dir := filepath.Join(b.TempDir(), "d")
				s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1) - 1)
							if i >= info.NumPieces() {
								return
							}
							for blk := range info.NumBlocks(i) {
								off := info.PieceOffset(i) + int64(blk)*metainfo.BlockSize
								if err := s.WriteBlock(i, blk*metainfo.BlockSize, data[off:off+metainfo.BlockSize]); err != nil {
									b.Error(err)
									return
								}
							}
							if ok, err := s.HashPiece(i); !ok || err != nil {
								b.Errorf("piece %d: %v %v", i, ok, err)
								return
							}
						}
					}()
				}
				wg.Wait()
				s.Close()
				os.RemoveAll(dir)
			}
		})
	}
}

// BenchmarkCheck hashes a complete 256 MiB torrent already on disk (in the page cache).
func BenchmarkCheck(b *testing.B) {
	info, data := benchTorrent(b)
	dir := b.TempDir()
	writeFiles(b, dir, info, data)
	b.SetBytes(info.TotalLength)
	for b.Loop() {
		s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		have, err := s.Check(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if !have.All() {
			b.Fatal("incomplete")
		}
		s.Close()
	}
}
