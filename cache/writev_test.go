package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestWriteBlocks writes every piece as runs of consecutive buffers of random sizes (not
// only whole blocks: a buffer may cross a file boundary or a pad file anywhere) and checks
// that the files hold what WriteBlock would have put there and the pieces verify.
func TestWriteBlocks(t *testing.T) {
	for _, g := range geometries {
		t.Run(g.name, func(t *testing.T) {
			info, data := makeTorrent(t, "t", g.pieceLen, g.single, g.files)
			s := open(t, t.TempDir(), info, Options{})
			rng := rand.New(rand.NewPCG(3, 4))
			for _, i := range rng.Perm(info.NumPieces()) {
				piece := data[info.PieceOffset(i) : info.PieceOffset(i)+info.PieceSize(i)]
				for begin := 0; begin < len(piece); {
					// A run of 1-6 buffers of 1 byte to 20 KiB each.
					var bufs [][]byte
					end := begin
					for k := rng.IntN(6) + 1; k > 0 && end < len(piece); k-- {
						n := min(rng.IntN(20<<10)+1, len(piece)-end)
						bufs = append(bufs, bytes.Clone(piece[end:end+n]))
						end += n
					}
					if err := s.WriteBlocks(i, begin, bufs); err != nil {
						t.Fatalf("WriteBlocks(%d, %d, %d buffers): %v", i, begin, len(bufs), err)
					}
					begin = end
				}
				verify(t, s, i, true)
			}
			readAllEqual(t, s, data)
		})
	}
}

// TestWriteBlocksOutOfRange: a run that goes past its piece is refused whole, and nothing
// of it is written.
func TestWriteBlocksOutOfRange(t *testing.T) {
	info, data := makeTorrent(t, "t", 32<<10, true, []fileSpec{{"f", 80 << 10, false}})
	s := open(t, t.TempDir(), info, Options{})
	err := s.WriteBlocks(0, 16<<10, [][]byte{data[16<<10 : 32<<10], data[32<<10 : 40<<10]})
	if err == nil {
		t.Fatal("a run past the piece's end was written")
	}
	if _, err := s.HashPiece(0); err == nil || !errors.Is(err, errMissing) {
		// Nothing was written, so the piece's bytes are missing on disk.
		t.Fatalf("HashPiece after a refused run: %v, want missing data", err)
	}
}

func TestTakeBytes(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), []byte("defg"), []byte("h")}
	head, tail := takeBytes(bufs, 5)
	if got := string(bytes.Join(head, nil)); got != "abcde" {
		t.Fatalf("head %q", got)
	}
	if got := string(bytes.Join(tail, nil)); got != "fgh" {
		t.Fatalf("tail %q", got)
	}
	if string(bufs[1]) != "defg" {
		t.Fatal("takeBytes changed its input")
	}
	head, tail = takeBytes(tail, 3)
	if string(bytes.Join(head, nil)) != "fgh" || len(tail) != 0 {
		t.Fatalf("all of it: %q %d", bytes.Join(head, nil), len(tail))
	}
}
