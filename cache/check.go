package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

// Check finds which pieces are already on disk and returns them. If a resume
// file is configured and every file's size and mtime still match it, its have set is
// trusted without reading anything. Otherwise pieces are hashed on all cores, a few in
// flight at a time, except pieces whose bytes are certainly absent: a missing file, a file
// too short, or a range that is entirely a hole in a sparse file (SEEK_DATA), which is what
// makes reopening a mostly empty cache fast. progress, if not nil, is called from Check's
// goroutine after each piece. Failed pieces that hold disk blocks are punched out. Check
// is meant to run before the storage is in use.
func (s *Storage) Check(ctx context.Context, progress func(done, total int)) (bitfield.Bitfield, error) {
	total := s.info.NumPieces()
	if progress == nil {
		progress = func(int, int) {}
	}
	if s.opts.StateFile != "" {
		if have, ok := s.loadState(); ok {
			s.log.WithField("pieces", have.Count()).Info("resume file matches the data; not re-hashing")
			progress(total, total)
			return have, nil
		}
	}
	sizes := s.statFiles()
	zero := &zeroHashes{}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		piece       int
		ok, hadData bool
		err         error
	}
	workers := runtime.GOMAXPROCS(0)
	results := make(chan result, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				ok, hadData, err := s.checkPiece(i, sizes, zero)
				select {
				case results <- result{i, ok, hadData, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	have := bitfield.New(total)
	var junk []int
	var firstErr error
	done := 0
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("check piece %d: %w", r.piece, r.err)
				cancel()
			}
			continue
		}
		if r.ok {
			have.Set(r.piece)
		} else if r.hadData {
			junk = append(junk, r.piece)
		}
		done++
		progress(done, total)
	}
	if firstErr != nil {
		return bitfield.Bitfield{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return bitfield.Bitfield{}, fmt.Errorf("check %q: %w", s.info.Name, err)
	}
	if !s.opts.ReadOnly {
		for _, i := range junk {
			free := func(j int) bool { return j < 0 || j >= total || !have.Has(j) }
			if err := s.Punch(i, free(i-1), free(i+1)); err != nil {
				s.log.WithError(err).WithField("piece", i).Warn("cannot free a partial piece")
			}
		}
	}
	return have, nil
}

// statFiles returns each file's size, -1 for files that are missing (or pad files, which
// are never read from disk).
func (s *Storage) statFiles() []int64 {
	sizes := make([]int64, len(s.info.Files))
	for i, f := range s.info.Files {
		sizes[i] = -1
		if f.Padding {
			continue
		}
		if st, err := os.Stat(s.files.paths[i]); err == nil && st.Mode().IsRegular() {
			sizes[i] = st.Size()
		}
	}
	return sizes
}

// checkPiece decides whether piece i is on disk, hashing it unless its bytes are certainly
// absent. hadData reports a failed piece that occupies disk blocks.
func (s *Storage) checkPiece(i int, sizes []int64, zero *zeroHashes) (ok, hadData bool, err error) {
	fileSpans := 0
	for _, sp := range s.info.Spans(s.info.PieceOffset(i), s.info.PieceSize(i)) {
		if s.info.Files[sp.File].Padding {
			continue
		}
		fileSpans++
		if sizes[sp.File] < sp.FileOffset+sp.Length {
			return false, false, nil
		}
		if !hadData {
			data, err := s.hasData(sp.File, sp.FileOffset, sp.Length)
			if err != nil {
				return false, false, err
			}
			hadData = data
		}
	}
	// An all-hole piece can still be genuine if the piece is all zeros (disk images have
	// such runs, and copies may store them sparse).
	if fileSpans > 0 && !hadData {
		if c, ok := s.mi.PieceCheck(i); !ok || !zero.matches(c) {
			return false, false, nil
		}
	}
	ok, err = s.hashPiece(i, false)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil // removed under us
	}
	return ok, hadData, err
}

// hasData tells whether any byte of the file range [off, off+n) is allocated. A file system
// without SEEK_DATA is taken to have data everywhere, which just means hashing.
func (s *Storage) hasData(file int, off, n int64) (bool, error) {
	h, err := s.files.get(file, false)
	if err != nil {
		return false, err
	}
	defer s.files.put(h)
	var pos int64
	var serr error
	if err := withFd(h, func(fd int) { pos, serr = unix.Seek(fd, off, unix.SEEK_DATA) }); err != nil {
		return true, nil
	}
	switch {
	case errors.Is(serr, unix.ENXIO):
		return false, nil // only a hole from off to the end of the file
	case serr != nil:
		return true, nil
	}
	return pos < off+n, nil
}

// zeroHashes tells whether all-zero bytes would pass a piece's check, hashing zeros once
// for each shape of check (a v1 torrent has two: full pieces and the last; a v2-only one
// one more for each length of a file's last piece). Check's workers share it.
type zeroHashes struct {
	mu   sync.Mutex
	sums map[metainfo.PieceCheck][metainfo.Hash256Size]byte // by the check with Want cleared
}

func (z *zeroHashes) matches(c metainfo.PieceCheck) bool {
	key := c
	key.Want = [metainfo.Hash256Size]byte{}
	z.mu.Lock()
	sum, ok := z.sums[key]
	z.mu.Unlock()
	if !ok {
		sum = c.Sum(make([]byte, c.Length))
		z.mu.Lock()
		if z.sums == nil {
			z.sums = map[metainfo.PieceCheck][metainfo.Hash256Size]byte{}
		}
		z.sums[key] = sum
		z.mu.Unlock()
	}
	return sum == c.Want
}
