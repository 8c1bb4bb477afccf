package cache

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"torrentfs/metainfo"
)

const kib = 1 << 10

// geometries are the layouts every test below runs over.
var geometries = []struct {
	name     string
	pieceLen int64
	single   bool
	files    []fileSpec
}{
	{"single", 64 * kib, true, []fileSpec{{"", 300*kib + 123, false}}},
	{"single-exact", 32 * kib, true, []fileSpec{{"", 128 * kib, false}}},
	{"single-one-short-piece", 64 * kib, true, []fileSpec{{"", 1000, false}}},
	{"multi-span-3-files", 64 * kib, false, []fileSpec{
		{"a", 50 * kib, false}, {"dir/b", 10 * kib, false}, {"dir/c", 20*kib + 7, false},
		{"d/e/f", 100 * kib, false},
	}},
	{"multi-zero-length", 32 * kib, false, []fileSpec{
		{"empty0", 0, false}, {"a", 40 * kib, false}, {"mid/empty", 0, false},
		{"b", 30*kib + 1, false}, {"tail/empty", 0, false},
	}},
	{"multi-pad", 32 * kib, false, []fileSpec{
		{"a", 20 * kib, false}, {".pad/12288", 12 * kib, true}, {"b", 33 * kib, false},
		{".pad/31744", 31 * kib, true}, {"c", 5 * kib, false},
	}},
}

func TestWriteVerifyRead(t *testing.T) {
	for _, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			info, data := makeTorrent(t, "t", g.pieceLen, g.single, g.files)
			dir := t.TempDir()
			s := open(t, dir, info, Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			// Pieces in random order, blocks within each piece in random order.
			for _, i := range rng.Perm(info.NumPieces()) {
				writePiece(t, s, data, i, rng.Perm(info.NumBlocks(i)))
				verify(t, s, i, true)
			}
			readAllEqual(t, s, data)
			// Every file on disk holds exactly its bytes; pad files are not there.
			for _, f := range info.Files {
				p := filepath.Join(dir, "t")
				if !g.single {
					p = filepath.Join(append([]string{p}, f.Path...)...)
				}
				b, err := os.ReadFile(p)
				if f.Padding {
					if !errors.Is(err, os.ErrNotExist) {
						t.Errorf("pad file %s exists on disk (err %v)", p, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("read file: %v", err)
				}
				if !bytes.Equal(b, data[f.Offset:f.Offset+f.Length]) {
					t.Errorf("file %s has wrong contents", p)
				}
			}
			// Block reads as uploads do them.
			for i := range info.NumPieces() {
				for b := range info.NumBlocks(i) {
					n := info.BlockSizeAt(i, b)
					p := make([]byte, n)
					if err := s.ReadBlock(i, b*metainfo.BlockSize, p); err != nil {
						t.Fatalf("ReadBlock(%d,%d): %v", i, b, err)
					}
					off := info.PieceOffset(i) + int64(b)*metainfo.BlockSize
					if !bytes.Equal(p, data[off:off+int64(n)]) {
						t.Fatalf("ReadBlock(%d,%d): wrong bytes", i, b)
					}
				}
			}
		})
	}
}

func TestCorruptBlockThenRewrite(t *testing.T) {
	info, data := makeTorrent(t, "t", 64*kib, false, geometries[3].files)
	s := open(t, t.TempDir(), info, Options{})
	const piece = 1 // spans files a, dir/b and dir/c
	bad := bytes.Clone(data)
	bad[info.PieceOffset(piece)+int64(metainfo.BlockSize)+5] ^= 0xff
	writePiece(t, s, bad, piece, nil)
	verify(t, s, piece, false)
	writePiece(t, s, data, piece, []int{3, 1, 0, 2})
	verify(t, s, piece, true)
}

func TestCheckAfterReopen(t *testing.T) {
	for _, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			info, data := makeTorrent(t, "t", g.pieceLen, g.single, g.files)
			dir := t.TempDir()
			s := open(t, dir, info, Options{})
			want := map[int]bool{}
			for i := 0; i < info.NumPieces(); i += 2 {
				writePiece(t, s, data, i, nil)
				verify(t, s, i, true)
				want[i] = true
			}
			// A written but never verified piece that is corrupt must not count.
			if info.NumPieces() > 1 {
				bad := bytes.Clone(data)
				bad[info.PieceOffset(1)] ^= 1
				writePiece(t, s, bad, 1, nil)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := open(t, dir, info, Options{})
			have, err := s2.Check(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range info.NumPieces() {
				if have.Has(i) != want[i] {
					t.Errorf("after Check piece %d present=%v, want %v", i, have.Has(i), want[i])
				}
			}
		})
	}
}
