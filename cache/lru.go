package cache

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Bounded mode. The LRU holds the pieces that are stored and unpinned, oldest read first;
// pinned stored pieces are outside it (and counted in pinnedBytes), so eviction is just
// "remove the oldest until under budget". Everything here runs with s.mu held.

// Pin protects piece from eviction until a matching Unpin; pins nest. The mount pins the
// pieces under an active read window and a file's head and tail. A piece may be pinned
// before it is stored. No-op when the storage is unbounded.
func (s *Storage) Pin(piece int) {
	if s.lru == nil || piece < 0 || piece >= len(s.pins) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinLocked(piece)
}

// Unpin releases one Pin. A piece whose last pin goes becomes the most recently used, and
// if pinned pieces had pushed the cache over its bound, eviction catches up now.
func (s *Storage) Unpin(piece int) {
	if s.lru == nil || piece < 0 || piece >= len(s.pins) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpinLocked(piece)
	s.shrinkLocked(0)
}

// Room is how many bytes of newly verified pieces the cache can take without evicting a
// pinned piece or going over its bound (evicting unpinned pieces as needed); MaxInt64 when
// unbounded. The picker can use it to avoid fetching pieces that would not stay.
func (s *Storage) Room() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked()
}

// CanAdmit tells whether piece, once verified, would fit beside the pinned pieces.
func (s *Storage) CanAdmit(piece int) bool {
	if s.lru == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have.Has(piece) {
		return true
	}
	return s.info.PieceSize(piece) <= s.roomLocked()
}

// Evictions is signalled (capacity 1, never blocks the storage) when evicted pieces are
// waiting to be collected with TakeEvictions.
func (s *Storage) Evictions() <-chan struct{} { return s.evictSig }

// TakeEvictions returns the pieces evicted since the last call, oldest first.
func (s *Storage) TakeEvictions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.evicted
	s.evicted = nil
	return out
}

func (s *Storage) pinLocked(i int) {
	s.pins[i]++
	if s.pins[i] == 1 && s.have.Has(i) {
		s.lru.Remove(i)
		s.pinnedBytes += s.info.PieceSize(i)
	}
}

func (s *Storage) unpinLocked(i int) {
	if s.pins[i] == 0 {
		s.log.WithField("piece", i).Warn("unpin of a piece that is not pinned")
		return
	}
	s.pins[i]--
	if s.pins[i] == 0 && s.have.Has(i) {
		s.lru.Add(i, struct{}{})
		s.pinnedBytes -= s.info.PieceSize(i)
	}
}

// admitLocked marks a verified piece stored. In bounded mode it first evicts enough old
// pieces to make room; if pinned pieces leave no room it is admitted anyway (a reader is
// most likely waiting for it) and the excess goes as soon as pins are released.
func (s *Storage) admitLocked(i int) {
	if s.have.Has(i) {
		return
	}
	size := s.info.PieceSize(i)
	// The bit is set before evicting: punch treats pieces that are neither stored nor
	// being written as free to zero at block edges. The piece is not in the LRU yet, so it
	// cannot be chosen itself.
	s.have.Set(i)
	s.haveBytes += size
	if s.lru != nil {
		s.shrinkLocked(0)
		if s.pins[i] > 0 {
			s.pinnedBytes += size
		} else {
			s.lru.Add(i, struct{}{})
		}
	}
}

// shrinkLocked evicts least recently used unpinned pieces until incoming more bytes fit.
func (s *Storage) shrinkLocked(incoming int64) {
	if s.lru == nil {
		return
	}
	for s.haveBytes+s.dirtyBytes+incoming > s.opts.MaxBytes {
		i, _, ok := s.lru.RemoveOldest()
		if !ok {
			return
		}
		s.evictLocked(i)
	}
}

// evictLocked drops a stored, unpinned piece: clears its bit, punches its bytes out of the
// files so disk use really drops, and queues it for the owner. Holding s.mu while punching
// means no read can be let in between the have bit going and the bytes going.
func (s *Storage) evictLocked(i int) {
	s.have.Clear(i)
	s.haveBytes -= s.info.PieceSize(i)
	if err := s.punch(i); err != nil {
		s.log.WithError(err).WithField("piece", i).Warn("evicted piece still takes disk space")
	}
	s.log.WithField("piece", i).Debug("evicted piece")
	s.evicted = append(s.evicted, i)
	select {
	case s.evictSig <- struct{}{}:
	default:
	}
}

// punch frees the disk blocks under piece i. A file-system block the piece shares with a
// neighbouring piece at its edge is freed too when that neighbour is neither stored nor
// being written; otherwise the kernel only zeroes our part of it and the neighbour's own
// eviction frees it later. Without that, files whose piece edges are not block aligned
// would leak a block per eviction. Runs with s.mu held (it reads have and dirty).
func (s *Storage) punch(i int) error {
	for _, sp := range s.info.Spans(s.info.PieceOffset(i), s.info.PieceSize(i)) {
		f := &s.info.Files[sp.File]
		if f.Padding {
			continue
		}
		h, err := s.files.get(sp.File, false)
		if err != nil {
			// A file never created holds nothing to free.
			continue
		}
		start, end := sp.FileOffset, sp.FileOffset+sp.Length
		if a := start &^ (h.blksize - 1); a < start && s.idle(f.Offset+a, start-a) {
			start = a
		}
		if e := min((end+h.blksize-1)&^(h.blksize-1), f.Length); e > end && s.idle(f.Offset+end, e-end) {
			end = e
		}
		var perr error
		cerr := withFd(h, func(fd int) {
			perr = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, start, end-start)
		})
		s.files.put(h)
		if cerr != nil {
			perr = cerr
		}
		if perr != nil {
			return fmt.Errorf("punch hole in %s at %d+%d: %w", h.path, start, end-start, perr)
		}
	}
	return nil
}

// idle tells whether every piece holding torrent bytes [off, off+n) is neither stored nor
// being written, so those bytes may be zeroed.
func (s *Storage) idle(off, n int64) bool {
	first, last := s.info.PieceRange(off, n)
	for j := first; j <= last; j++ {
		if s.have.Has(j) || s.dirty.Has(j) {
			return false
		}
	}
	return true
}

func withFd(h *handle, fn func(fd int)) error {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// Discard frees the disk space of a piece that is not stored: the swarm calls it for a
// piece it abandons half-written; VerifyPiece calls it for a failed piece in bounded mode.
// It keeps disk use near the bound, since unverified bytes are not in the LRU.
func (s *Storage) Discard(piece int) error {
	if s.opts.ReadOnly || piece < 0 || piece >= s.info.NumPieces() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.have.Has(piece) {
		return nil
	}
	s.clearDirtyLocked(piece)
	return s.punch(piece)
}

// markDirtyLocked notes that piece is being written. In bounded mode its bytes count
// against the bound from its first block, so pieces in flight cannot push the disk past it:
// older pieces are evicted to make room now.
func (s *Storage) markDirtyLocked(piece int) {
	if s.dirty.Has(piece) {
		return
	}
	s.dirty.Set(piece)
	s.dirtyBytes += s.info.PieceSize(piece)
	s.shrinkLocked(0)
}

func (s *Storage) clearDirtyLocked(piece int) {
	if s.dirty.Has(piece) {
		s.dirty.Clear(piece)
		s.dirtyBytes -= s.info.PieceSize(piece)
	}
}
