package metainfo

// How a piece of the torrent's byte stream is verified, whatever the torrent's version, and
// the 20 bytes that name its swarm.

import (
	"crypto/sha1"
	"fmt"
	"math/bits"
)

// SwarmHash is the 20-byte name of the torrent's swarm in handshakes, trackers, the DHT and
// local discovery: the v1 info-hash, or for a torrent known only by its v2 one (a v2-only
// torrent) that hash truncated (BEP 52).
func (m *MetaInfo) SwarmHash() Hash {
	if m.InfoHash != (Hash{}) {
		return m.InfoHash
	}
	return m.InfoHashV2.Truncate()
}

// SwarmHash is the 20-byte name of the link's swarm: its v1 info-hash, or its v2 one
// truncated when it has no v1 one (a v2-only torrent, BEP 52).
func (m *Magnet) SwarmHash() Hash {
	if m.HasV1() {
		return m.InfoHash
	}
	return m.InfoHashV2.Truncate()
}

// PieceCheck is what one piece of the byte stream must hash to, and how: by SHA-1 over the
// whole piece (a v1 or hybrid torrent's v1 piece hash), or for a v2-only torrent by BEP 52,
// the merkle root of the SHA-256 hashes of the piece's 16 KiB blocks, which must equal its
// file's piece-layer entry (or the file's pieces root for a file of one piece). Two checks
// that differ only in Want hash zeros alike, which is what a cache of all-zero sums may key on.
type PieceCheck struct {
	V2 bool
	// Want is the SHA-1 (in the first 20 bytes) or the SHA-256 merkle root to match.
	Want [Hash256Size]byte
	// Length is how many of the piece's first bytes are hashed: all of them for SHA-1; for
	// v2 its file's bytes, since the pad after a file's end is outside its merkle tree.
	Length int64
	// Leaves is the width of a v2 piece's tree: the blocks of a piece for a file longer than
	// one, else the file's blocks rounded up to a power of two. The leaves past the file's
	// end are zero hashes.
	Leaves int
}

// PieceCheck says how piece i is verified: by its v1 SHA-1 when the torrent has v1 piece
// hashes (v1 and hybrid torrents), else by BEP 52 (see PieceCheck). ok is false when the
// torrent lacks what it takes: an index out of range, or a v2 file whose piece layer is
// unknown (an info dictionary without the torrent file's piece layers).
func (m *MetaInfo) PieceCheck(i int) (c PieceCheck, ok bool) {
	info := &m.Info
	if i < 0 || i >= info.NumPieces() {
		return c, false
	}
	if info.Pieces != nil {
		if i >= len(info.Pieces) {
			return c, false
		}
		copy(c.Want[:], info.Pieces[i][:])
		c.Length = info.PieceSize(i)
		return c, true
	}
	k, pf, ok := m.V2Piece(i)
	if !ok {
		return c, false
	}
	f := &info.Files[k]
	layer := m.PieceLayer(f)
	if (pf+1)*Hash256Size > len(layer) {
		return c, false
	}
	c.V2 = true
	copy(c.Want[:], layer[pf*Hash256Size:])
	c.Length = min(info.PieceLength, f.Length-int64(pf)*info.PieceLength)
	if f.Length > info.PieceLength {
		c.Leaves = int(info.PieceLength / BlockSize)
	} else {
		blocks := (f.Length + BlockSize - 1) / BlockSize
		c.Leaves = 1 << bits.Len64(uint64(blocks-1))
	}
	return c, true
}

// Sum hashes piece, the piece's bytes as the stream holds them (pad bytes included), the
// way c checks them: only the first Length bytes are read.
func (c PieceCheck) Sum(piece []byte) [Hash256Size]byte {
	var out [Hash256Size]byte
	data := piece[:min(int64(len(piece)), c.Length)]
	if !c.V2 {
		s := sha1.Sum(data)
		copy(out[:], s[:])
		return out
	}
	scratch := make([]Hash256, 0, (len(data)+BlockSize-1)/BlockSize)
	return pieceRootV2(data, c.Leaves, scratch)
}

// Matches tells whether piece hashes to Want.
func (c PieceCheck) Matches(piece []byte) bool {
	return int64(len(piece)) >= c.Length && c.Sum(piece) == c.Want
}

// CheckVerifiable tells whether every piece can be verified (PieceCheck), and if not why:
// a v1 torrent without piece hashes, or a v2-only one missing a file's piece layer.
func (m *MetaInfo) CheckVerifiable() error {
	info := &m.Info
	if info.Pieces != nil || !info.Version.HasV2() {
		if len(info.Pieces) != info.NumPieces() {
			return fmt.Errorf("%s: %d piece hashes for %d pieces", info.Name, len(info.Pieces), info.NumPieces())
		}
		return nil
	}
	for k := range info.Files {
		f := &info.Files[k]
		if f.Padding || f.Length == 0 {
			continue
		}
		if int64(len(m.PieceLayer(f))) != (f.Length+info.PieceLength-1)/info.PieceLength*Hash256Size {
			return fmt.Errorf("%s: the piece layer of file %s is unknown", info.Name, quote(info.DisplayPath(f)))
		}
	}
	for i := range info.NumPieces() {
		if _, _, ok := m.V2Piece(i); !ok {
			return fmt.Errorf("%s: piece %d lies in no v2 file", info.Name, i)
		}
	}
	return nil
}
