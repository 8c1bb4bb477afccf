package cache

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Punch frees the disk blocks under piece i (an evicted piece, or the partial bytes of one
// that failed or was abandoned), so disk use really drops. A file-system block the piece
// shares with a neighbouring piece at its edge is freed too when the owner says that
// neighbour is free (neither stored nor being written: freeBefore for piece i-1, freeAfter
// for i+1); otherwise the kernel only zeroes our part of it and the neighbour's own punch
// frees it later. Without that, files whose piece edges are not block aligned would leak a
// block per eviction. The owner must keep writes to piece i and to a neighbour it called
// free from running until Punch returns.
func (s *Storage) Punch(i int, freeBefore, freeAfter bool) error {
	if s.opts.ReadOnly || i < 0 || i >= s.info.NumPieces() {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	pieceStart, pieceEnd := s.info.PieceOffset(i), s.info.PieceOffset(i)+s.info.PieceSize(i)
	for _, sp := range s.info.Spans(pieceStart, s.info.PieceSize(i)) {
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
		// Bytes of the file before start (after end) within the same block belong to
		// piece i-1 (i+1) only when the span begins (ends) at the piece's own edge.
		if a := start &^ (h.blksize - 1); a < start && freeBefore && f.Offset+start == pieceStart {
			start = a
		}
		if e := min((end+h.blksize-1)&^(h.blksize-1), f.Length); e > end && freeAfter && f.Offset+end == pieceEnd {
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
		if perr == syscall.EOPNOTSUPP {
			// A file system without hole punching: zero nothing, the bytes are simply
			// overwritten by the next download.
			return nil
		}
		if perr != nil {
			return fmt.Errorf("punch hole in %s at %d+%d: %w", h.path, start, end-start, perr)
		}
	}
	return nil
}

func withFd(h *handle, fn func(fd int)) error {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// DiskUsage reports the bytes the torrent's files take on disk (allocated blocks, so holes
// do not count) and the bytes still available to an unprivileged writer on their file
// system: what a bounded cache can hold when the disk is full.
func (s *Storage) DiskUsage() (used, avail int64, err error) {
	for _, p := range s.files.paths {
		if p == "" {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			used += st.Blocks * 512
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.dir, &fs); err != nil {
		return used, 0, fmt.Errorf("statfs %s: %w", s.dir, err)
	}
	return used, int64(fs.Bavail) * fs.Bsize, nil
}
