package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// WriteBlock stores data at offset begin of piece, across as many files as it spans. Pad
// file bytes are dropped (they read as zeros). The owner never writes to a verified piece:
// late duplicates from endgame must not disturb data being served.
func (s *Storage) WriteBlock(piece, begin int, data []byte) error {
	if err := s.checkWrite("write block", piece, begin, int64(len(data))); err != nil {
		return err
	}
	if err := s.writeAt(data, s.info.PieceOffset(piece)+int64(begin)); err != nil {
		return fmt.Errorf("write block %d+%d of piece %d: %w", begin, len(data), piece, err)
	}
	return nil
}

// checkWrite tells whether n bytes at offset begin of piece may be written now: the
// storage is writable and open, and the bytes lie inside the piece (what names the write
// in that error).
func (s *Storage) checkWrite(what string, piece, begin int, n int64) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := s.checkRange(piece, int64(begin), n); err != nil {
		return fmt.Errorf("%s %d+%d of piece %d: %w", what, begin, n, piece, err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// ReadBlock reads len(p) bytes at offset begin of piece; for uploads.
func (s *Storage) ReadBlock(piece, begin int, p []byte) error {
	if err := s.checkRange(piece, int64(begin), int64(len(p))); err != nil {
		return fmt.Errorf("read block %d+%d of piece %d: %w", begin, len(p), piece, err)
	}
	_, err := s.ReadAt(p, s.info.PieceOffset(piece)+int64(begin))
	return err
}

// ReadAt reads torrent bytes [off, off+len(p)) as the files hold them. The caller makes sure
// every piece they touch is verified and stays so until the read returns (the owner's pins):
// the storage cannot tell verified bytes from others. A read past the end is cut short with
// io.EOF.
func (s *Storage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	if off >= s.info.TotalLength {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if rest := s.info.TotalLength - off; int64(n) > rest {
		n, eof = int(rest), io.EOF
	}
	if n == 0 {
		return 0, nil
	}
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if err := s.readAt(p[:n], off); err != nil {
		return 0, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	return n, eof
}

func (s *Storage) checkRange(piece int, begin, n int64) error {
	if piece < 0 || piece >= s.info.NumPieces() {
		return fmt.Errorf("piece index out of range [0,%d)", s.info.NumPieces())
	}
	if begin < 0 || n < 0 || begin+n > s.info.PieceSize(piece) {
		return fmt.Errorf("range outside the piece's %d bytes", s.info.PieceSize(piece))
	}
	return nil
}

// writeAt writes torrent bytes at off into the files they belong to, creating files on
// first write. Pad spans are skipped.
func (s *Storage) writeAt(p []byte, off int64) error {
	for _, sp := range s.info.Spans(off, int64(len(p))) {
		chunk := p[:sp.Length]
		p = p[sp.Length:]
		if s.info.Files[sp.File].Padding {
			continue
		}
		h, err := s.files.get(sp.File, true)
		if err != nil {
			return err
		}
		_, err = h.f.WriteAt(chunk, sp.FileOffset)
		s.files.put(h)
		if err != nil {
			return fmt.Errorf("file offset %d: %w", sp.FileOffset, err) // err names the file
		}
	}
	return nil
}

// errMissing marks reads that found a file absent or too short: the bytes were never
// written, which Check treats as a missing piece and HashPiece as a storage fault.
var errMissing = errors.New("data missing on disk")

// readAt reads torrent bytes at off from the files; pad spans read as zeros.
func (s *Storage) readAt(p []byte, off int64) error {
	for _, sp := range s.info.Spans(off, int64(len(p))) {
		chunk := p[:sp.Length]
		p = p[sp.Length:]
		if s.info.Files[sp.File].Padding {
			clear(chunk)
			continue
		}
		h, err := s.files.get(sp.File, false)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %w", errMissing, err)
		}
		if err != nil {
			return err
		}
		_, err = h.f.ReadAt(chunk, sp.FileOffset)
		s.files.put(h)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s at %d: file is short: %w", h.path, sp.FileOffset, errMissing)
		}
		if err != nil {
			return fmt.Errorf("file offset %d: %w", sp.FileOffset, err)
		}
	}
	return nil
}
