package metainfo

// BitTorrent v2 (BEP 52): the file tree, the per-file merkle trees over 16 KiB blocks and the
// piece layers that commit to them, and how a v2 torrent's files map onto the one byte stream
// with pieces that the rest of the code base works in.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// Hash256Size is the length of a SHA-256 digest: a v2 info-hash, pieces root or layer hash.
const Hash256Size = 32

// Hash256 is a SHA-256 digest: a v2 info-hash or a node of a v2 file's merkle tree.
type Hash256 [Hash256Size]byte

// HexString returns the digest in lower-case hex.
func (h Hash256) HexString() string { return hex.EncodeToString(h[:]) }

func (h Hash256) String() string { return h.HexString() }

// Truncate returns the first 20 bytes: what v2 handshakes, trackers and the DHT use in place
// of a v1 info-hash.
func (h Hash256) Truncate() Hash { return Hash(h[:HashSize]) }

// IsZero tells whether h is all zeros, which stands for "absent" in MetaInfo and Magnet.
func (h Hash256) IsZero() bool { return h == Hash256{} }

// Version says which BitTorrent versions an info dictionary serves.
type Version uint8

const (
	V1     Version = iota // BEP 3 only: pieces and a file list (the zero value)
	V2                    // BEP 52 only: meta version 2 and a file tree
	Hybrid                // both, describing the same files (BEP 52 with BEP 47 pad files)
)

// HasV1 tells whether the torrent has v1 piece hashes and a v1 info-hash.
func (v Version) HasV1() bool { return v != V2 }

// HasV2 tells whether the torrent has a v2 file tree and a v2 info-hash.
func (v Version) HasV2() bool { return v != V1 }

func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	}
	return "version(" + strconv.Itoa(int(v)) + ")"
}

// parseFileTree reads a BEP 52 file tree into its files, in tree order (each directory's keys
// as written, which bencoding sorts), with paths sanitized as v1 paths are. Offsets are not set.
func parseFileTree(v bval) ([]File, error) {
	if v.kind() != 'd' {
		return nil, invalid("file tree is %s, not a dictionary", v.kindName())
	}
	var files []File
	if err := walkFileTree(v, nil, &files); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, invalid("file tree is empty")
	}
	return files, checkPaths(files)
}

// walkFileTree appends the files below node, whose path is path. A node holding the key ""
// is a file and holds nothing else; any other node is a directory.
func walkFileTree(node bval, path []string, files *[]File) error {
	n := 0
	for k, v := range node.entries() {
		n++
		if k == "" {
			continue // a file's properties; checked below once the node is known to be a file
		}
		if v.kind() != 'd' {
			return invalid("file tree entry %s is %s, not a dictionary", quote(strings.Join(append(path, k), "/")), v.kindName())
		}
		if err := walkFileTree(v, append(slices.Clip(path), k), files); err != nil {
			return err
		}
	}
	props, isFile := entry(node, "")
	switch {
	case !isFile && n == 0:
		if len(path) == 0 {
			return nil // the empty tree; the caller says so
		}
		return invalid("file tree directory %s is empty", quote(strings.Join(path, "/")))
	case !isFile:
		return nil
	case n > 1:
		return invalid("file tree entry %s is both a file and a directory", quote(strings.Join(path, "/")))
	}
	f, err := parseTreeFile(path, props)
	if err != nil {
		return err
	}
	*files = append(*files, f)
	return nil
}

func parseTreeFile(rawPath []string, props bval) (File, error) {
	var f File
	shown := quote(strings.Join(rawPath, "/"))
	if props.kind() != 'd' {
		return f, invalid("file tree file %s is %s, not a dictionary", shown, props.kindName())
	}
	var err error
	if f.Path, err = sanitizePath(rawPath); err != nil {
		return f, invalid("file tree path %s: %v", shown, err)
	}
	length, _ := entry(props, "length")
	if f.Length, err = intField("file "+shown+" length", length); err != nil {
		return f, err
	}
	if f.Length < 0 {
		return f, invalid("file %s: length %d is negative", shown, f.Length)
	}
	root, hasRoot := entry(props, "pieces root")
	switch {
	case f.Length == 0 && hasRoot:
		return f, invalid("empty file %s has a pieces root", shown)
	case f.Length == 0:
	case !hasRoot:
		return f, invalid("file %s has no pieces root", shown)
	default:
		b, ok := root.bytes()
		if !ok || len(b) != Hash256Size {
			return f, invalid("file %s: pieces root is not a %d-byte string", shown, Hash256Size)
		}
		if f.PiecesRoot = Hash256(b); f.PiecesRoot.IsZero() {
			return f, invalid("file %s: pieces root is all zeros", shown) // zero stands for none
		}
	}
	return f, nil
}

// entry finds key in the dictionary d.
func entry(d bval, key string) (bval, bool) {
	for k, v := range d.entries() {
		if k == key {
			return v, true
		}
	}
	return nil, false
}

// checkPaths rejects two files at one path and a path that is both a file and a directory
// ("a" and "a/b"). Pad files are exempt: they often share names and are never shown.
func checkPaths(files []File) error {
	seen := map[string]bool{}
	for _, f := range files {
		if f.Padding {
			continue
		}
		key := strings.Join(f.Path, "/")
		if seen[key] {
			return invalid("duplicate file path %s", quote(key))
		}
		seen[key] = true
	}
	for _, f := range files {
		if f.Padding {
			continue
		}
		for j := 1; j < len(f.Path); j++ {
			if dir := strings.Join(f.Path[:j], "/"); seen[dir] {
				return invalid("path %s is both a file and a directory", quote(dir))
			}
		}
	}
	return nil
}

// padFiles lays files out as one byte stream the way v2 needs it and libtorrent 2.0 writes
// multi-file hybrids: in order, with a BEP 47 pad file after every file whose length is not a
// multiple of pieceLen (the last one too), so that every non-empty file starts on a piece
// boundary. It sets the offsets and returns the stream's length.
func padFiles(files []File, pieceLen int64) ([]File, int64, error) {
	out := make([]File, 0, 2*len(files))
	var off int64
	for _, f := range files {
		f.Offset = off
		out = append(out, f)
		if off+f.Length < off {
			return nil, 0, invalid("total length overflows")
		}
		off += f.Length
		if r := f.Length % pieceLen; r != 0 {
			pad := pieceLen - r
			out = append(out, File{Path: []string{".pad", strconv.FormatInt(pad, 10)}, Length: pad, Offset: off, Padding: true})
			if off+pad < off {
				return nil, 0, invalid("total length overflows")
			}
			off += pad
		}
	}
	return out, off, nil
}

// layoutV2 gives a v2-only torrent the v1-style geometry the rest of the code base uses: the
// tree's files with the pad files a hybrid of it has (padFiles). One file at the top of the tree makes a
// single-file torrent named after it, as libtorrent reads it.
func layoutV2(info *Info, tree []File) error {
	if len(tree) == 1 && len(tree[0].Path) == 1 {
		info.Single = true
		info.Name = tree[0].Path[0]
		info.Files = []File{{Length: tree[0].Length, PiecesRoot: tree[0].PiecesRoot}}
		info.TotalLength = tree[0].Length
		return nil
	}
	var err error
	info.Files, info.TotalLength, err = padFiles(tree, info.PieceLength)
	return err
}

// matchHybrid checks that a hybrid's v1 file list describes the files of its v2 tree: the same
// paths and lengths in the same order once pad files are skipped, every non-empty file on a
// piece boundary, no piece that is all padding. It copies the pieces roots onto the v1 files.
func matchHybrid(info *Info, tree []File) error {
	k := 0
	for i := range info.Files {
		f := &info.Files[i]
		if f.Padding {
			continue
		}
		path := f.Path
		if info.Single {
			path = []string{info.Name}
		}
		shown := quote(strings.Join(path, "/"))
		if k == len(tree) {
			return invalid("hybrid torrent: v1 file %s is not in the v2 file tree", shown)
		}
		t := &tree[k]
		k++
		if !slices.Equal(path, t.Path) || f.Length != t.Length {
			return invalid("hybrid torrent: v1 file %d is %s (%d bytes) but the v2 file tree has %s (%d bytes) there",
				k-1, shown, f.Length, quote(strings.Join(t.Path, "/")), t.Length)
		}
		if f.Length > 0 && f.Offset%info.PieceLength != 0 {
			return invalid("hybrid torrent: file %s starts at byte %d, not on a piece boundary", shown, f.Offset)
		}
		f.PiecesRoot = t.PiecesRoot
	}
	if k < len(tree) {
		return invalid("hybrid torrent: v2 file %s is not in the v1 file list", quote(strings.Join(tree[k].Path, "/")))
	}
	// Pad files no longer than needed: piece i of v1 is then piece i of v2.
	var v2Pieces int64
	for _, t := range tree {
		v2Pieces += (t.Length + info.PieceLength - 1) / info.PieceLength
	}
	if n := int64(info.NumPieces()); n != v2Pieces {
		return invalid("hybrid torrent: the v1 layout has %d pieces but the v2 files have %d (pad files longer than needed)", n, v2Pieces)
	}
	return nil
}

// checkV2PieceLength applies BEP 52's rule: a power of two, at least one 16 KiB block.
func checkV2PieceLength(n int64) error {
	if n < BlockSize || bits.OnesCount64(uint64(n)) != 1 {
		return invalid("piece length %d of a v2 torrent is not a power of two of at least 16 KiB", n)
	}
	return nil
}

// parsePieceLayers reads the top-level piece layers (BEP 52) and checks, for every file longer
// than a piece, that its layer is there, has one hash per piece and hashes up to the file's
// pieces root. Layers no file needs are dropped.
func parsePieceLayers(v bval, info *Info) (map[Hash256][]byte, error) {
	if v != nil && v.kind() != 'd' {
		return nil, invalid("piece layers is %s, not a dictionary", v.kindName())
	}
	given := map[string]bval{} // one pass, not one per file: a torrent may have many of both
	if v != nil {
		for k, l := range v.entries() {
			given[k] = l
		}
	}
	layers := map[Hash256][]byte{}
	for i := range info.Files {
		f := &info.Files[i]
		if f.Padding || f.Length <= info.PieceLength {
			continue
		}
		if _, done := layers[f.PiecesRoot]; done {
			continue // identical files share a root and a layer
		}
		shown := quote(info.DisplayPath(f))
		layer := given[string(f.PiecesRoot[:])]
		if layer == nil {
			return nil, invalid("file %s has no piece layer", shown)
		}
		b, ok := layer.bytes()
		if !ok {
			return nil, invalid("piece layer of file %s is %s, not a string", shown, layer.kindName())
		}
		if err := checkPieceLayer(b, f.PiecesRoot, f.Length, info.PieceLength); err != nil {
			return nil, invalid("file %s: %v", shown, err)
		}
		layers[f.PiecesRoot] = slices.Clone(b)
	}
	return layers, nil
}

// checkPieceLayer checks a file's piece layer against its pieces root: ceil(length/pieceLen)
// hashes whose merkle root, with the layer padded by hashes of all-zero subtrees to a power of
// two, is root. pieceLen must be a power of two >= BlockSize.
func checkPieceLayer(layer []byte, root Hash256, length, pieceLen int64) error {
	if length <= 0 {
		return fmt.Errorf("an empty file has no piece layer")
	}
	n := (length + pieceLen - 1) / pieceLen
	if int64(len(layer)) != n*Hash256Size {
		return fmt.Errorf("piece layer is %d bytes; want %d (%d hashes of %d pieces)", len(layer), n*Hash256Size, n, n)
	}
	hashes := make([]Hash256, n)
	for i := range hashes {
		copy(hashes[i][:], layer[i*Hash256Size:])
	}
	if got := merkleRoot(hashes, zeroSubtree(pieceLen/BlockSize), int(n)); got != root {
		return fmt.Errorf("piece layer hashes to %s, not the pieces root %s", got, root)
	}
	return nil
}

// zeroSubtree is the root of a merkle tree of leaves zero leaves (a power of two), what a
// piece past the end of a file hashes to.
func zeroSubtree(leaves int64) Hash256 {
	var h Hash256
	for ; leaves > 1; leaves /= 2 {
		h = hashPair(h, h)
	}
	return h
}

func hashPair(a, b Hash256) Hash256 {
	var buf [2 * Hash256Size]byte
	copy(buf[:], a[:])
	copy(buf[Hash256Size:], b[:])
	return sha256.Sum256(buf[:])
}

// merkleRoot returns the root of the tree whose bottom layer is hashes padded with pad to
// width, the next power of two of max(width, len(hashes)) nodes. It overwrites hashes.
func merkleRoot(hashes []Hash256, pad Hash256, width int) Hash256 {
	if len(hashes) == 0 {
		return pad
	}
	width = max(width, len(hashes))
	for w := 1; w < width; w *= 2 {
		for i := 0; i < len(hashes); i += 2 {
			r := pad
			if i+1 < len(hashes) {
				r = hashes[i+1]
			}
			hashes[i/2] = hashPair(hashes[i], r)
		}
		hashes = hashes[:(len(hashes)+1)/2]
		pad = hashPair(pad, pad)
	}
	return hashes[0]
}

// pieceRootV2 hashes one piece of a v2 file: SHA-256 of each 16 KiB block (the last may be
// short) as leaves, padded with zero leaves to width leaves. For a file longer than a piece
// width is the blocks in a piece and the result is its piece-layer hash; for a shorter file it
// is the file's blocks rounded up to a power of two and the result is the pieces root.
// scratch must hold at least the number of blocks in data.
func pieceRootV2(data []byte, width int, scratch []Hash256) Hash256 {
	leaves := scratch[:0]
	for off := 0; off < len(data); off += BlockSize {
		leaves = append(leaves, sha256.Sum256(data[off:min(off+BlockSize, len(data))]))
	}
	return merkleRoot(leaves, Hash256{}, width)
}
