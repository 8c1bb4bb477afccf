package swarm

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// The upload reader reads ahead only for blocks asked for in order, serves them from what
// it read, and never returns bytes other than the piece's.
func TestUploadReader(t *testing.T) {
	const pieceLen = 10 * wireBlockSize // the last piece is shorter: 2.5 blocks
	data := make([]byte, 2*pieceLen+2*wireBlockSize+wireBlockSize/2)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	size := func(piece int) int64 { return min(int64(pieceLen), int64(len(data)-piece*pieceLen)) }
	var reads []int // lengths read
	fail := false
	read := func(piece, begin int, p []byte) error {
		if fail {
			return errors.New("gone")
		}
		reads = append(reads, len(p))
		copy(p, data[piece*pieceLen+begin:])
		return nil
	}
	type req struct{ piece, block int }
	for _, tc := range []struct {
		name  string
		reqs  []req
		reads []int // in blocks
	}{
		{"a piece in order", []req{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {0, 7}, {0, 8}, {0, 9}}, []int{1, 4, 4, 1}},
		{"scattered", []req{{1, 3}, {0, 7}, {1, 9}, {1, 5}}, []int{1, 1, 1, 1}},
		{"the short last piece", []req{{2, 0}, {2, 1}, {2, 2}}, []int{1, 2}}, // blocks 1 and the half block 2
		{"in order across pieces", []req{{0, 9}, {1, 0}, {1, 1}, {1, 2}}, []int{1, 1, 4}},
		{"a repeat", []req{{1, 0}, {1, 1}, {1, 1}, {1, 2}}, []int{1, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUploadReader()
			reads = nil
			for _, r := range tc.reqs {
				begin := r.block * wireBlockSize
				n := int(min(int64(wireBlockSize), size(r.piece)-int64(begin)))
				b, err := u.block(read, size(r.piece), r.piece, begin, n)
				if err != nil {
					t.Fatal(err)
				}
				off := r.piece*pieceLen + begin
				if !bytes.Equal(b, data[off:off+n]) {
					t.Fatalf("block %d of piece %d: wrong bytes", r.block, r.piece)
				}
			}
			var got []int
			for _, n := range reads {
				got = append(got, (n+wireBlockSize-1)/wireBlockSize)
			}
			if !slices.Equal(got, tc.reads) {
				t.Errorf("reads of %v blocks, want %v", got, tc.reads)
			}
		})
	}
	// A failed read leaves nothing behind to serve.
	u := newUploadReader()
	u.block(read, size(0), 0, 0, wireBlockSize)
	u.block(read, size(0), 0, wireBlockSize, wireBlockSize) // reads blocks 1-4
	fail = true
	if _, err := u.block(read, size(1), 1, 0, wireBlockSize); err == nil {
		t.Fatal("a failed read returned a block")
	}
	if _, err := u.block(read, size(0), 0, 2*wireBlockSize, wireBlockSize); err == nil {
		t.Fatal("a block read ahead before a failed read was served from a buffer the failed read overwrote")
	}
}
