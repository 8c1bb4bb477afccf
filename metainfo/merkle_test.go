package metainfo

import (
	"context"
	"errors"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// testTree builds the tree of data cut in pieces of pieceLen the way a torrent creator does,
// independently of newFileTree's geometry: piece hashes with pieceRootV2, the root over them.
func testTree(t testing.TB, data []byte, pieceLen int64) *FileTree {
	t.Helper()
	bpp := int(pieceLen / BlockSize)
	scratch := make([]Hash256, bpp)
	var layer []byte
	var root Hash256
	if int64(len(data)) <= pieceLen {
		blocks := (len(data) + BlockSize - 1) / BlockSize
		root = pieceRootV2(data, 1<<bits.Len(uint(blocks-1)), scratch)
		layer = root[:]
	} else {
		var hs []Hash256
		for off := 0; off < len(data); off += int(pieceLen) {
			h := pieceRootV2(data[off:min(off+int(pieceLen), len(data))], bpp, scratch)
			hs = append(hs, h)
			layer = append(layer, h[:]...)
		}
		root = merkleRoot(hs, zeroSubtree(int64(bpp)), len(hs))
		if err := checkPieceLayer(layer, root, int64(len(data)), pieceLen); err != nil {
			t.Fatal(err)
		}
	}
	ft, err := newFileTree(root, int64(len(data)), pieceLen, layer)
	if err != nil {
		t.Fatal(err)
	}
	return ft
}

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// blockHashes are the leaf hashes of piece p of data.
func blockHashes(data []byte, pieceLen int64, p int) []Hash256 {
	var out []Hash256
	end := min(int64(p+1)*pieceLen, int64(len(data)))
	for off := int64(p) * pieceLen; off < end; off += BlockSize {
		out = append(out, HashBlock(data[off:min(off+BlockSize, end)]))
	}
	return out
}

func TestBlockHashesRoundTrip(t *testing.T) {
	const K = BlockSize
	tests := []struct {
		name     string
		length   int
		pieceLen int64
		pieces   []int
		request  bool // a hash request is needed (more than one leaf under a piece)
	}{
		{"3.5 pieces, last one partial", 3*64<<10 + 20000, 64 << 10, []int{0, 1, 3}, true},
		{"last piece of one short block", 2*64<<10 + 100, 64 << 10, []int{0, 2}, true},
		{"exactly one piece", 64 << 10, 64 << 10, []int{0}, true},
		{"shorter than a piece", 3*K - 5, 128 << 10, []int{0}, true},
		{"two blocks, big pieces", 2 * K, 4 << 20, []int{0}, true},
		{"one block", K, 64 << 10, []int{0}, false},
		{"16 KiB pieces", 5 * K, K, []int{0, 4}, false},
		{"4 MiB pieces", 9<<20 + 1, 4 << 20, []int{0, 1, 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := testData(tt.length, uint64(tt.length))
			ft := testTree(t, data, tt.pieceLen)
			for _, p := range tt.pieces {
				leaves := blockHashes(data, tt.pieceLen, p)
				if got := ft.PieceBlocks(p); got != len(leaves) {
					t.Fatalf("piece %d: PieceBlocks %d, want %d", p, got, len(leaves))
				}
				r, ok := ft.BlockRequest(p)
				if ok != tt.request {
					t.Fatalf("piece %d: BlockRequest ok %v", p, ok)
				}
				if !ok {
					if len(leaves) == 1 && ft.PieceHash(p) != leaves[0] {
						t.Fatalf("piece %d: a one-block piece's hash is not its block's", p)
					}
					continue
				}
				if r.NumProofHashes() != 0 || r.Index%r.Length != 0 {
					t.Fatalf("piece %d: request %+v", p, r)
				}
				if _, need, _ := ft.NeedsPiece(r); !need {
					t.Fatalf("piece %d: block hashes need the piece", p)
				}
				ans, err := ft.Answer(r, p, leaves)
				if err != nil {
					t.Fatal(err)
				}
				if len(ans) != r.Length {
					t.Fatalf("answer of %d hashes, want %d", len(ans), r.Length)
				}
				for i := len(leaves); i < len(ans); i++ {
					if ans[i] != (Hash256{}) {
						t.Fatalf("leaf %d past the end of the file is not zero", i)
					}
				}
				got, err := ft.VerifyBlockHashes(p, ans)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(leaves) {
					t.Fatalf("%d block hashes, want %d", len(got), len(leaves))
				}
				for i := range got {
					if got[i] != leaves[i] {
						t.Fatalf("block %d hash differs", i)
					}
				}
				// Any one hash changed, the zero padding included, fails.
				for i := range ans {
					bad := append([]Hash256(nil), ans...)
					bad[i][7] ^= 1
					if _, err := ft.VerifyBlockHashes(p, bad); !errors.Is(err, ErrHashProof) {
						t.Fatalf("hash %d flipped: %v", i, err)
					}
				}
				// Another piece's answer does not pass for this one.
				if other := (p + 1) % ft.NumPieces(); other != p {
					if _, err := ft.VerifyBlockHashes(other, ans); err == nil {
						t.Fatalf("piece %d's hashes pass for piece %d", p, other)
					}
				}
			}
		})
	}
}

// TestProofsAboveThePieceLayer asks for block hashes with uncles up to the root, as
// libtorrent does, and for piece-layer hashes, which need no piece data.
func TestProofsAboveThePieceLayer(t *testing.T) {
	const pieceLen = 32 << 10 // 2 blocks a piece
	data := testData(7*pieceLen+999, 7)
	ft := testTree(t, data, pieceLen) // 15 blocks: 16 leaves, height 4, piece layer 1
	for p := range ft.NumPieces() {
		leaves := blockHashes(data, pieceLen, p)
		for proof := 0; proof < ft.height; proof++ {
			r := HashRange{BaseLayer: 0, Index: 2 * p, Length: 2, ProofLayers: proof}
			ans, err := ft.Answer(r, p, leaves)
			if err != nil {
				t.Fatalf("piece %d proof %d: %v", p, proof, err)
			}
			if err := ft.Verify(r, ans); err != nil {
				t.Fatalf("piece %d proof %d: %v", p, proof, err)
			}
			if proof > 0 {
				bad := append([]Hash256(nil), ans...)
				bad[len(bad)-1][0] ^= 0x80 // the top uncle
				if err := ft.Verify(r, bad); !errors.Is(err, ErrHashProof) {
					t.Fatalf("piece %d proof %d: a wrong uncle passes: %v", p, proof, err)
				}
			}
		}
		// One leaf with its sibling as the proof.
		r := HashRange{BaseLayer: 0, Index: 2*p + 1, Length: 1, ProofLayers: 0}
		ans, err := ft.Answer(r, p, leaves)
		if err != nil || len(ans) != 2 {
			t.Fatalf("single leaf: %v %d", err, len(ans))
		}
		if err := ft.Verify(r, ans); err != nil {
			t.Fatal(err)
		}
	}
	// The piece layer itself, with proofs to just under the root, from the layer alone.
	for _, r := range []HashRange{
		{BaseLayer: 1, Index: 0, Length: 8, ProofLayers: 2},
		{BaseLayer: 1, Index: 4, Length: 4, ProofLayers: 2},
		{BaseLayer: 1, Index: 6, Length: 2, ProofLayers: 2},
		{BaseLayer: 2, Index: 2, Length: 2, ProofLayers: 1},
	} {
		if _, need, _ := ft.NeedsPiece(r); need {
			t.Fatalf("%+v needs a piece", r)
		}
		ans, err := ft.Answer(r, -1, nil)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if err := ft.Verify(r, ans); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
	}
}

func TestHashRangeRejected(t *testing.T) {
	const pieceLen = 64 << 10
	data := testData(3*pieceLen+5, 3)
	ft := testTree(t, data, pieceLen) // 13 blocks: 16 leaves, height 4, piece layer 2
	leaves := blockHashes(data, pieceLen, 1)
	for _, tt := range []struct {
		name string
		r    HashRange
		err  error
	}{
		{"length not a power of two", HashRange{Index: 0, Length: 3, ProofLayers: 1}, ErrHashRange},
		{"misaligned", HashRange{Index: 2, Length: 4, ProofLayers: 1}, ErrHashRange},
		{"past the layer", HashRange{Index: 16, Length: 4, ProofLayers: 1}, ErrHashRange},
		{"longer than the layer", HashRange{Index: 0, Length: 32}, ErrHashRange},
		{"base is the root", HashRange{BaseLayer: 4, Length: 1}, ErrHashRange},
		{"proof past the root", HashRange{Index: 4, Length: 4, ProofLayers: 4}, ErrHashRange},
		{"negative", HashRange{Index: -4, Length: 4}, ErrHashRange},
		{"spans two pieces", HashRange{Index: 0, Length: 8, ProofLayers: 2}, ErrHashRange},
		{"another piece's leaves", HashRange{Index: 8, Length: 4, ProofLayers: 1}, ErrHashRange},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ft.Answer(tt.r, 1, leaves); !errors.Is(err, tt.err) {
				t.Fatalf("Answer: %v, want %v", err, tt.err)
			}
		})
	}
	// A proof that stops below the piece layer proves nothing we can check.
	r := HashRange{Index: 4, Length: 2, ProofLayers: 0}
	ans, err := ft.Answer(r, 1, leaves)
	if err != nil {
		t.Fatal(err)
	}
	if err := ft.Verify(r, ans); !errors.Is(err, ErrHashProof) {
		t.Fatalf("a proof below the piece layer: %v", err)
	}
	if err := ft.Verify(HashRange{Index: 4, Length: 4, ProofLayers: 1}, ans); !errors.Is(err, ErrHashProof) {
		t.Fatalf("too few hashes: %v", err)
	}
}

// TestV2PieceAndTreesOfCreatedTorrent checks the trees of a hybrid made by Create: every
// file's pieces map back from the byte stream, and block hashes from the data verify.
func TestV2PieceAndTreesOfCreatedTorrent(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "set")
	sizes := map[string]int{"a.bin": 3*64<<10 + 777, "b/c.bin": 64 << 10, "b/d.bin": 100, "e.bin": 0, "f.bin": 2*64<<10 + 1}
	content := map[string][]byte{}
	for name, n := range sizes {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		content[name] = testData(n, uint64(n)+1)
		if err := os.WriteFile(p, content[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := Create(context.Background(), root, CreateOptions{PieceLength: 64 << 10, Version: Hybrid, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i := range m.Info.NumPieces() {
		k, pf, ok := m.V2Piece(i)
		if !ok {
			t.Fatalf("piece %d has no v2 file", i)
		}
		f := &m.Info.Files[k]
		if f.Padding || f.Length == 0 || pf != seen[k] {
			t.Fatalf("piece %d -> file %d piece %d", i, k, pf)
		}
		seen[k]++
		ft, err := m.FileTree(f)
		if err != nil {
			t.Fatal(err)
		}
		data := content[filepath.Join(f.Path...)]
		leaves := blockHashes(data, m.Info.PieceLength, pf)
		r, ok := ft.BlockRequest(pf)
		if !ok {
			if len(leaves) != 1 || ft.PieceHash(pf) != leaves[0] {
				t.Fatalf("file %v piece %d: no request and no lone block", f.Path, pf)
			}
			continue
		}
		ans, err := ft.Answer(r, pf, leaves)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ft.VerifyBlockHashes(pf, ans); err != nil {
			t.Fatalf("file %v piece %d: %v", f.Path, pf, err)
		}
	}
	for k, n := range seen {
		if f := &m.Info.Files[k]; n != int((f.Length+m.Info.PieceLength-1)/m.Info.PieceLength) {
			t.Fatalf("file %v: %d pieces mapped", f.Path, n)
		}
	}
	if _, _, ok := (&MetaInfo{Info: Info{PieceLength: 1 << 14, TotalLength: 1 << 14}}).V2Piece(0); ok {
		t.Fatal("a v1 torrent has v2 pieces")
	}
}
