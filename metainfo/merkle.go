package metainfo

// BEP 52 merkle proofs: the hashes a peer asks for with a hash request and gets in a hashes
// message, checked against what the torrent file commits to (each file's piece layer), and
// built, on the serving side, from a piece's data and the piece layer.
//
// A file's tree has one leaf per 16 KiB block, the SHA-256 of the block (the last one may be
// short), padded with zero leaves to a power of two; a node is the SHA-256 of its two
// children. Layers are counted from the leaves (0) up; the piece layer is the one whose nodes
// each cover a piece, log2(piece length / 16 KiB), and for a file no longer than a piece it is
// the root. Every function here is pure.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"sort"
)

// HashRange is what a BEP 52 hash request asks for in one file's tree: Length hashes of layer
// BaseLayer from Index on, and the uncle hashes of ProofLayers ancestor layers (the first
// log2(Length)-1 of which the base hashes give, so they carry no hash; see NumProofHashes).
type HashRange struct {
	BaseLayer, Index, Length, ProofLayers int
}

// NumProofHashes is how many uncle hashes follow the base hashes in an answer to r.
func (r HashRange) NumProofHashes() int {
	if r.Length <= 0 {
		return 0
	}
	return max(0, r.ProofLayers-(bits.Len(uint(r.Length-1))-1))
}

// ErrHashRange: a hash request this file's tree cannot answer as asked (out of the tree, not
// aligned, or proof layers past the root).
var ErrHashRange = errors.New("bad hash range")

// ErrHashProof: hashes that do not hash up to what the torrent commits to.
var ErrHashProof = errors.New("hashes do not match the piece layer")

// FileTree is what a torrent file tells of one v2 file's merkle tree: its shape and its piece
// layer. It is immutable.
type FileTree struct {
	Root        Hash256
	length      int64
	pieceLen    int64
	blocks      int    // leaves that hold data
	height      int    // layers above the leaves: the tree has 1<<height leaves
	pieceHeight int    // the piece layer: min(log2(piece length/BlockSize), height)
	layer       []byte // the piece layer's hashes, concatenated (just Root for one piece)
}

// FileTree returns file f's tree; f must be a non-empty v2 file of m.
func (m *MetaInfo) FileTree(f *File) (*FileTree, error) {
	if f.PiecesRoot.IsZero() || f.Length <= 0 {
		return nil, fmt.Errorf("file %s has no merkle tree", m.Info.DisplayPath(f))
	}
	layer := m.PieceLayer(f)
	if layer == nil {
		return nil, fmt.Errorf("file %s has no piece layer", m.Info.DisplayPath(f))
	}
	return newFileTree(f.PiecesRoot, f.Length, m.Info.PieceLength, layer)
}

func newFileTree(root Hash256, length, pieceLen int64, layer []byte) (*FileTree, error) {
	if err := checkV2PieceLength(pieceLen); err != nil {
		return nil, err
	}
	blocks := (length + BlockSize - 1) / BlockSize
	t := &FileTree{Root: root, length: length, pieceLen: pieceLen, blocks: int(blocks),
		height: bits.Len64(uint64(blocks - 1)), layer: layer}
	t.pieceHeight = min(bits.Len64(uint64(pieceLen/BlockSize))-1, t.height)
	if n := t.NumPieces(); len(layer) != n*Hash256Size {
		return nil, fmt.Errorf("piece layer of %d bytes for %d pieces", len(layer), n)
	}
	return t, nil
}

// NumPieces is the number of pieces of the file.
func (t *FileTree) NumPieces() int { return int((t.length + t.pieceLen - 1) / t.pieceLen) }

// PieceBlocks is the number of 16 KiB blocks of piece p of the file (fewer in its last piece).
func (t *FileTree) PieceBlocks(p int) int {
	per := t.pieceLen / BlockSize
	return int(min(per, int64(t.blocks)-int64(p)*per))
}

// PieceHash is piece p's hash in the piece layer (the root for a file of one piece).
func (t *FileTree) PieceHash(p int) Hash256 { return Hash256(t.layer[p*Hash256Size:]) }

// leavesPerPiece is the width of a piece's subtree: blocks per piece, or for a file of one
// piece its blocks rounded up to a power of two.
func (t *FileTree) leavesPerPiece() int { return 1 << t.pieceHeight }

// BlockRequest is the hash request for the block hashes of piece p: the piece's leaves (zero
// leaves past the end of the file included), with no uncle, since the piece layer we hold
// checks them. ok is false when a piece has one block: its block hash is the piece hash.
func (t *FileTree) BlockRequest(p int) (r HashRange, ok bool) {
	n := t.leavesPerPiece()
	if n < 2 || p < 0 || p >= t.NumPieces() {
		return HashRange{}, false
	}
	return HashRange{BaseLayer: 0, Index: p * n, Length: n, ProofLayers: t.pieceHeight - 1}, true
}

// Check tells whether r is a request this tree can answer in principle: a power-of-two
// Length (at least 1) at an Index that is a multiple of it, inside layer BaseLayer, and proof
// layers that stay below the root (what libtorrent 2.0 accepts, plus the alignment BEP 52
// requires).
func (t *FileTree) Check(r HashRange) error {
	switch {
	case r.BaseLayer < 0 || r.BaseLayer >= t.height:
		return fmt.Errorf("%w: base layer %d of a tree of %d", ErrHashRange, r.BaseLayer, t.height)
	case r.Length <= 0 || r.Length&(r.Length-1) != 0 || r.Index < 0 || r.Index%r.Length != 0:
		return fmt.Errorf("%w: %d hashes from %d", ErrHashRange, r.Length, r.Index)
	case r.Index+r.Length > 1<<(t.height-r.BaseLayer):
		return fmt.Errorf("%w: hashes %d..%d past layer %d's %d", ErrHashRange, r.Index, r.Index+r.Length, r.BaseLayer, 1<<(t.height-r.BaseLayer))
	case r.ProofLayers < 0 || r.ProofLayers >= t.height-r.BaseLayer:
		return fmt.Errorf("%w: %d proof layers above layer %d of %d", ErrHashRange, r.ProofLayers, r.BaseLayer, t.height)
	}
	return nil
}

// NeedsPiece tells which piece's data answering r takes: the one piece whose leaves the
// base hashes lie under when BaseLayer is below the piece layer (ok false when they span
// several pieces: we do not serve those); need is false when the piece layer suffices.
func (t *FileTree) NeedsPiece(r HashRange) (p int, need, ok bool) {
	if r.BaseLayer >= t.pieceHeight {
		return 0, false, true
	}
	shift := t.pieceHeight - r.BaseLayer
	first, last := r.Index>>shift, (r.Index+r.Length-1)>>shift
	return first, true, first == last
}

// Answer builds the hashes message for r: the base hashes, then the uncles from the lowest
// up. leaves are the block hashes of piece p (PieceBlocks(p) of them; see HashBlock) when
// NeedsPiece says the answer needs them, else ignored.
func (t *FileTree) Answer(r HashRange, p int, leaves []Hash256) ([]Hash256, error) {
	if err := t.Check(r); err != nil {
		return nil, err
	}
	src := nodeSource{t: t, piece: -1}
	if q, need, ok := t.NeedsPiece(r); !ok {
		return nil, fmt.Errorf("%w: base hashes span several pieces", ErrHashRange)
	} else if need {
		if q != p || len(leaves) != t.PieceBlocks(p) {
			return nil, fmt.Errorf("%w: needs piece %d's %d block hashes", ErrHashRange, q, t.PieceBlocks(q))
		}
		src.piece, src.leaves = p, leaves
	}
	out := make([]Hash256, 0, r.Length+r.NumProofHashes())
	for i := range r.Length {
		out = append(out, src.node(r.BaseLayer, r.Index+i))
	}
	k := bits.Len(uint(r.Length - 1)) // the base hashes' subtree is k layers high
	h, idx := r.BaseLayer+k, r.Index>>k
	for range r.NumProofHashes() {
		out = append(out, src.node(h, idx^1))
		h, idx = h+1, idx>>1
	}
	return out, nil
}

// Verify checks a hashes answer to r (base hashes, then uncles) against the piece layer: the
// base hashes' subtree root, climbed with the uncles, must reach the piece layer or above and
// equal the node the piece layer gives there.
func (t *FileTree) Verify(r HashRange, hashes []Hash256) error {
	if err := t.Check(r); err != nil {
		return err
	}
	if len(hashes) != r.Length+r.NumProofHashes() {
		return fmt.Errorf("%w: %d hashes, want %d", ErrHashProof, len(hashes), r.Length+r.NumProofHashes())
	}
	h, idx, cur := climb(r, hashes)
	if h < t.pieceHeight {
		return fmt.Errorf("%w: the proof stops at layer %d, below the piece layer %d", ErrHashProof, h, t.pieceHeight)
	}
	if want := (nodeSource{t: t, piece: -1}).node(h, idx); cur != want {
		return fmt.Errorf("%w: layer %d node %d", ErrHashProof, h, idx)
	}
	return nil
}

// climb hashes an answer to r (base hashes, then uncles) up: the base hashes' subtree root
// (Length is a power of two), then one layer per uncle. It returns the layer and index of the
// node it reaches, and that node.
func climb(r HashRange, hashes []Hash256) (h, idx int, node Hash256) {
	scratch := make([]Hash256, r.Length)
	copy(scratch, hashes[:r.Length])
	node = merkleRoot(scratch, Hash256{}, r.Length)
	k := bits.Len(uint(r.Length - 1))
	h, idx = r.BaseLayer+k, r.Index>>k
	for _, u := range hashes[r.Length:] {
		if idx&1 == 0 {
			node = hashPair(node, u)
		} else {
			node = hashPair(u, node)
		}
		h, idx = h+1, idx>>1
	}
	return h, idx, node
}

// MaxLayerRequest is how many piece-layer hashes one of our requests asks for (see
// PieceLayerRanges): libtorrent asks for as many, and a hashes message of them stays at
// 16 KiB.
const MaxLayerRequest = 512

// PieceLayerRanges are the hash requests that together give the piece layer of a v2 file of
// length bytes, longer than one piece of pieceLen (a power of two of at least BlockSize):
// runs of up to MaxLayerRequest hashes of the layer, each with the uncles that take it up to
// the pieces root, so that each answer is checked on its own (VerifyLayerRange). A torrent
// that came as a magnet link has no piece layers: its peers give them this way.
func PieceLayerRanges(length, pieceLen int64) []HashRange {
	if length <= pieceLen || pieceLen < BlockSize || bits.OnesCount64(uint64(pieceLen)) != 1 {
		return nil
	}
	height, pieceHeight := treeHeights(length, pieceLen)
	width := 1 << (height - pieceHeight)
	n := int((length + pieceLen - 1) / pieceLen)
	size := min(width, MaxLayerRequest)
	var out []HashRange
	for i := 0; i < n; i += size {
		out = append(out, HashRange{BaseLayer: pieceHeight, Index: i, Length: size, ProofLayers: height - pieceHeight - 1})
	}
	return out
}

// treeHeights are the layers above the leaves of the tree of a file of length bytes, and
// the piece layer's (for a file longer than one piece).
func treeHeights(length, pieceLen int64) (height, pieceHeight int) {
	blocks := (length + BlockSize - 1) / BlockSize
	return bits.Len64(uint64(blocks - 1)), bits.Len64(uint64(pieceLen/BlockSize)) - 1
}

// VerifyLayerRange checks a peer's answer to r, one of PieceLayerRanges(length, pieceLen),
// against the file's pieces root, and returns the piece-layer hashes it gives: those of the
// file's pieces r covers (the hashes of the padding past the last piece dropped).
func VerifyLayerRange(root Hash256, length, pieceLen int64, r HashRange, hashes []Hash256) ([]Hash256, error) {
	height, pieceHeight := treeHeights(length, pieceLen)
	switch {
	case length <= pieceLen || r.BaseLayer != pieceHeight || r.Length <= 0 || r.Length&(r.Length-1) != 0 ||
		r.Index < 0 || r.Index%r.Length != 0 || r.Index+r.Length > 1<<(height-pieceHeight) || r.ProofLayers != height-pieceHeight-1:
		return nil, fmt.Errorf("%w: not a request of the piece layer", ErrHashRange)
	case len(hashes) != r.Length+r.NumProofHashes():
		return nil, fmt.Errorf("%w: %d hashes, want %d", ErrHashProof, len(hashes), r.Length+r.NumProofHashes())
	}
	if h, idx, node := climb(r, hashes); h != height || idx != 0 || node != root {
		return nil, fmt.Errorf("%w: the piece layer's hashes %d..%d do not reach the pieces root", ErrHashProof, r.Index, r.Index+r.Length)
	}
	n := int((length + pieceLen - 1) / pieceLen)
	return append([]Hash256(nil), hashes[:max(0, min(r.Length, n-r.Index))]...), nil
}

// CheckPieceLayer checks a v2 file's piece layer (its pieces' hashes, concatenated) against
// its pieces root, as Parse checks a torrent file's.
func CheckPieceLayer(layer []byte, root Hash256, length, pieceLen int64) error {
	if err := checkV2PieceLength(pieceLen); err != nil {
		return err
	}
	return checkPieceLayer(layer, root, length, pieceLen)
}

// VerifyBlockHashes checks the answer to BlockRequest(p) and returns the hashes of the
// piece's PieceBlocks(p) blocks (the zero leaves past the end of the file dropped).
func (t *FileTree) VerifyBlockHashes(p int, hashes []Hash256) ([]Hash256, error) {
	r, ok := t.BlockRequest(p)
	if !ok {
		return nil, fmt.Errorf("%w: piece %d has no block hashes to ask for", ErrHashRange, p)
	}
	if err := t.Verify(r, hashes); err != nil {
		return nil, err
	}
	return append([]Hash256(nil), hashes[:t.PieceBlocks(p)]...), nil
}

// HashBlock is a 16 KiB block's leaf hash (the last block of a file may be shorter).
func HashBlock(b []byte) Hash256 { return sha256.Sum256(b) }

// nodeSource computes nodes of a file's tree: at or above the piece layer from the torrent's
// piece layer, below it from the leaves of one piece.
type nodeSource struct {
	t      *FileTree
	piece  int // whose leaves we have, -1 for none
	leaves []Hash256
}

func (s nodeSource) node(h, idx int) Hash256 {
	t := s.t
	if h >= t.pieceHeight {
		span := 1 << (h - t.pieceHeight)
		lo, n := idx*span, t.NumPieces()
		if lo >= n {
			return zeroSubtree(1 << h)
		}
		hs := make([]Hash256, 0, min(span, n-lo))
		for i := lo; i < min(lo+span, n); i++ {
			hs = append(hs, t.PieceHash(i))
		}
		return merkleRoot(hs, zeroSubtree(int64(t.leavesPerPiece())), span)
	}
	// Below the piece layer: inside piece s.piece (Answer made sure of it).
	span := 1 << h
	lo := idx*span - s.piece*t.leavesPerPiece()
	if lo >= len(s.leaves) {
		return zeroSubtree(int64(span))
	}
	hs := append([]Hash256(nil), s.leaves[lo:min(lo+span, len(s.leaves))]...)
	return merkleRoot(hs, Hash256{}, span)
}

// V2Piece maps piece i of the torrent's byte stream to the v2 file it lies in and the
// piece's index within that file. ok is false for a v1 torrent and for a piece of padding.
// Blocks of the piece past the file's end are padding, with no v2 hash.
func (m *MetaInfo) V2Piece(i int) (file, pieceInFile int, ok bool) {
	if !m.Info.Version.HasV2() || i < 0 || i >= m.Info.NumPieces() {
		return 0, 0, false
	}
	off := m.Info.PieceOffset(i)
	files := m.Info.Files
	// The last file starting at or before off.
	k := sort.Search(len(files), func(j int) bool { return files[j].Offset > off }) - 1
	for ; k >= 0; k-- {
		f := &files[k]
		if f.Offset > off || f.Length == 0 {
			continue
		}
		if f.Padding || off >= f.Offset+f.Length {
			return 0, 0, false
		}
		return k, int((off - f.Offset) / m.Info.PieceLength), true
	}
	return 0, 0, false
}
