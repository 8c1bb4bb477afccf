package cache

import (
	"errors"
	"fmt"
	"sync"
)

// bufPool holds piece-sized buffers for hashing, so verification allocates once per worker
// rather than once per piece.
var bufPool sync.Pool

func getBuf(n int64) *[]byte {
	if b, ok := bufPool.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func putBuf(b *[]byte) { bufPool.Put(b) }

// HashPiece reads piece back from disk and checks it against its hash: SHA-1 for a v1 or
// hybrid torrent, for a v2-only one the BEP 52 merkle root of its file's part against the
// piece layer (metainfo.PieceCheck). Bytes never written (a missing or short file) count
// as a mismatch; real I/O errors are returned. It records nothing: the owner admits a
// matching piece to its Ledger, or discards a failed one's bytes (Punch).
func (s *Storage) HashPiece(piece int) (bool, error) {
	if piece < 0 || piece >= s.info.NumPieces() {
		return false, fmt.Errorf("verify piece %d: index out of range [0,%d)", piece, s.info.NumPieces())
	}
	if s.closed.Load() {
		return false, ErrClosed
	}
	// Strict: the owner wrote these bytes, so a file gone or short is a storage fault (a
	// cache file deleted underneath), not a mismatch to blame on a peer.
	ok, err := s.hashPiece(piece, true)
	if err != nil {
		return false, fmt.Errorf("verify piece %d: %w", piece, err)
	}
	return ok, nil
}

// hashPiece reads the bytes of piece its check hashes and compares; bytes never written
// count as a mismatch unless strict, real I/O errors are returned.
func (s *Storage) hashPiece(piece int, strict bool) (bool, error) {
	c, ok := s.mi.PieceCheck(piece)
	if !ok {
		return false, fmt.Errorf("piece %d has no hash to check", piece) // Open checked they all have
	}
	// A v2 piece's pad bytes past its file's end are not hashed, so not read.
	buf := getBuf(c.Length)
	defer putBuf(buf)
	s.hashed.Add(1)
	if err := s.readAt(*buf, s.info.PieceOffset(piece)); err != nil {
		if errors.Is(err, errMissing) && !strict {
			return false, nil
		}
		return false, err
	}
	return c.Matches(*buf), nil
}
