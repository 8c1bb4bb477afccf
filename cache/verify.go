package cache

import (
	"bytes"
	"crypto/sha1"
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

// VerifyPiece reads piece back from disk and checks it against its SHA-1. On a match the
// piece becomes stored (in bounded mode it is admitted to the LRU, evicting as needed); on
// a mismatch it stays missing and its bytes are simply overwritten by the next download
// (in bounded mode they are punched out so junk does not take cache space). A piece whose
// files were never written fails without error.
func (s *Storage) VerifyPiece(piece int) (bool, error) {
	if piece < 0 || piece >= s.info.NumPieces() {
		return false, fmt.Errorf("verify piece %d: index out of range [0,%d)", piece, s.info.NumPieces())
	}
	s.mu.Lock()
	closed, present := s.closed, s.have.Has(piece)
	s.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	if present {
		return true, nil
	}
	ok, err := s.hashPiece(piece)
	if err != nil {
		return false, fmt.Errorf("verify piece %d: %w", piece, err)
	}
	if !ok {
		s.log.WithField("piece", piece).Debug("piece failed hash check")
		if s.lru != nil {
			if err := s.Discard(piece); err != nil {
				s.log.WithError(err).WithField("piece", piece).Warn("failed piece still takes disk space")
			}
		} else {
			s.mu.Lock()
			s.clearDirtyLocked(piece)
			s.mu.Unlock()
		}
		return false, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, ErrClosed
	}
	s.clearDirtyLocked(piece)
	s.admitLocked(piece)
	s.sinceSave++
	save := s.opts.StateFile != "" && !s.opts.ReadOnly && s.sinceSave >= s.opts.StateEvery
	if save {
		s.sinceSave = 0
	}
	s.mu.Unlock()
	s.log.WithField("piece", piece).Debug("piece verified")
	if save {
		if err := s.saveState(); err != nil {
			s.log.WithError(err).Warn("cannot write resume file")
		}
	}
	return true, nil
}

// hashPiece reads piece from disk and compares its SHA-1; bytes never written count as a
// mismatch, real I/O errors are returned.
func (s *Storage) hashPiece(piece int) (bool, error) {
	buf := getBuf(s.info.PieceSize(piece))
	defer putBuf(buf)
	s.hashed.Add(1)
	if err := s.readAt(*buf, s.info.PieceOffset(piece)); err != nil {
		if errors.Is(err, errMissing) {
			return false, nil
		}
		return false, err
	}
	sum := sha1.Sum(*buf)
	return bytes.Equal(sum[:], s.info.Pieces[piece][:]), nil
}
