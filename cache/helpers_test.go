package cache

import (
	"bytes"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// fileSpec describes one file of a test torrent: "a/b" path, length, pad.
type fileSpec struct {
	path string
	n    int64
	pad  bool
}

// makeTorrent builds an Info for files (single-file when single) and random content for
// it, zeros in pad files.
func makeTorrent(t testing.TB, name string, pieceLen int64, single bool, files []fileSpec) (*metainfo.Info, []byte) {
	t.Helper()
	info := &metainfo.Info{Name: name, PieceLength: pieceLen, Single: single}
	var total int64
	for _, f := range files {
		var p []string
		if !single {
			p = strings.Split(f.path, "/")
		}
		info.Files = append(info.Files, metainfo.File{Path: p, Length: f.n, Offset: total, Padding: f.pad})
		total += f.n
	}
	info.TotalLength = total
	data := make([]byte, total)
	rng := rand.New(rand.NewPCG(uint64(total), uint64(pieceLen)))
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		for i := f.Offset; i < f.Offset+f.Length; i++ {
			data[i] = byte(rng.Uint32())
		}
	}
	n := (total + pieceLen - 1) / pieceLen
	info.Pieces = make([]metainfo.Hash, n)
	for i := range info.Pieces {
		end := min(int64(i+1)*pieceLen, total)
		info.Pieces[i] = sha1.Sum(data[int64(i)*pieceLen : end])
	}
	return info, data
}

func open(t testing.TB, dir string, info *metainfo.Info, opts Options) *Storage {
	t.Helper()
	if opts.Log == nil {
		opts.Log = testutil.Log(t)
	}
	s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writePiece writes piece i of data in blocks, in the order given by perm (nil: in order).
func writePiece(t testing.TB, s *Storage, data []byte, i int, perm []int) {
	t.Helper()
	info := s.Info()
	nb := info.NumBlocks(i)
	if perm == nil {
		perm = make([]int, nb)
		for b := range perm {
			perm[b] = b
		}
	}
	for _, b := range perm {
		off := info.PieceOffset(i) + int64(b)*metainfo.BlockSize
		n := info.BlockSizeAt(i, b)
		if err := s.WriteBlock(i, b*metainfo.BlockSize, data[off:off+int64(n)]); err != nil {
			t.Fatalf("WriteBlock(%d, %d): %v", i, b, err)
		}
	}
}

func verify(t testing.TB, s *Storage, i int, want bool) {
	t.Helper()
	ok, err := s.HashPiece(i)
	if err != nil {
		t.Fatalf("HashPiece(%d): %v", i, err)
	}
	if ok != want {
		t.Fatalf("HashPiece(%d) = %v, want %v", i, ok, want)
	}
}

// writeFiles lays data out as real files under dir the way any client would.
func writeFiles(t testing.TB, dir string, info *metainfo.Info, data []byte) {
	t.Helper()
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		p := filepath.Join(dir, info.Name)
		if !info.Single {
			p = filepath.Join(append([]string{p}, f.Path...)...)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sha1Sum(b []byte) metainfo.Hash { return metainfo.Hash(sha1.Sum(b)) }

// readAllEqual checks that a read of the whole torrent returns data.
func readAllEqual(t testing.TB, s *Storage, data []byte) {
	t.Helper()
	got := make([]byte, s.Info().TotalLength)
	if n, err := s.ReadAt(got, 0); err != nil || n != len(got) {
		t.Fatalf("ReadAt all: %d, %v", n, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("ReadAt returned different bytes")
	}
}
