package metainfo

import "sort"

// BlockSize is the request size every client uses (BEP 3 recommends 16 KiB; larger requests
// are refused by many peers).
const BlockSize = 16 << 10

// NumPieces is the number of pieces in the torrent. It is counted from the geometry, which
// every version has, rather than from Pieces, which a v2-only torrent lacks.
func (i *Info) NumPieces() int {
	if i.PieceLength <= 0 || i.TotalLength <= 0 {
		return 0
	}
	return int((i.TotalLength-1)/i.PieceLength + 1)
}

// PieceOffset is the position of piece p's first byte in the torrent's byte stream.
func (i *Info) PieceOffset(p int) int64 { return int64(p) * i.PieceLength }

// PieceSize is the length of piece p; only the last piece may be shorter.
func (i *Info) PieceSize(p int) int64 {
	n := i.NumPieces()
	if p < 0 || p >= n {
		return 0
	}
	if p == n-1 {
		return i.TotalLength - i.PieceOffset(p)
	}
	return i.PieceLength
}

// NumBlocks is how many BlockSize requests piece p takes.
func (i *Info) NumBlocks(p int) int {
	return int((i.PieceSize(p) + BlockSize - 1) / BlockSize)
}

// BlockSizeAt is the length of block b of piece p; the piece's last block may be shorter.
func (i *Info) BlockSizeAt(p, b int) int {
	if b < 0 {
		return 0
	}
	n := i.PieceSize(p) - int64(b)*BlockSize
	if n > BlockSize {
		return BlockSize
	}
	if n < 0 {
		return 0
	}
	return int(n)
}

// PieceRange returns the pieces [first, last] that hold the torrent bytes [off, off+n), after
// clipping the range to the torrent: a read that runs past the end needs no piece beyond the
// last. It returns last < first when nothing is left.
func (i *Info) PieceRange(off, n int64) (first, last int) {
	off, end := i.clip(off, n)
	if off >= end {
		return 0, -1
	}
	return int(off / i.PieceLength), int((end - 1) / i.PieceLength)
}

// clip limits [off, off+n) to [0, TotalLength), without overflowing for any inputs.
func (i *Info) clip(off, n int64) (start, end int64) {
	if n <= 0 || off >= i.TotalLength {
		return 0, 0
	}
	start = max(off, 0)
	end = i.TotalLength
	if off < 0 || n < i.TotalLength-off {
		end = min(end, off+n) // off+n cannot overflow here: off is negative or n is small
	}
	return start, end
}

// FileSpan is the part of one file that a torrent byte range covers.
type FileSpan struct {
	File       int   // index into Info.Files
	FileOffset int64 // where in the file the span starts
	Length     int64
}

// Spans returns the parts of files that the torrent bytes [off, off+n) cover, in order, after
// clipping the range to the torrent. Zero-length files are skipped: they hold no bytes of any
// range. Pad files are included; their File.Padding says so.
func (i *Info) Spans(off, n int64) []FileSpan {
	off, end := i.clip(off, n)
	var out []FileSpan
	// First file whose end is past off.
	k := sort.Search(len(i.Files), func(k int) bool {
		f := &i.Files[k]
		return f.Offset+f.Length > off
	})
	for ; k < len(i.Files) && off < end; k++ {
		f := &i.Files[k]
		if f.Length == 0 {
			continue
		}
		start := off - f.Offset
		l := min(f.Length-start, end-off)
		out = append(out, FileSpan{File: k, FileOffset: start, Length: l})
		off += l
	}
	return out
}
