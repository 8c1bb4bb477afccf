package swarm

// uploadReadAhead is how much of a piece a writer reads at once once a peer asks for a
// piece's blocks in order: four blocks, a read system call per four uploads instead of one
// per upload (at a few MiB/s per peer that was a sixth of a seeder's system calls).
const uploadReadAhead = 64 << 10

// uploadReader reads the blocks a peer's writer uploads; the writer goroutine owns it. A
// peer fetching a piece asks for its blocks in order, so after a block that follows the
// one before it, the reader reads uploadReadAhead bytes and serves the next blocks from
// them. A read that comes out of order reads only its block, so a peer that asks for
// scattered blocks (a player seeking) costs no more than before. The bytes of a verified
// piece never change, so what was read stays good for as long as it is kept; whether the
// piece may still be served was decided when the request was taken, as before.
type uploadReader struct {
	buf        []byte
	piece      int // buf holds bytes [begin, end) of piece
	begin, end int
	// The block served last ended at lastEnd of lastPiece: the next one is in order if it
	// starts there.
	lastPiece, lastEnd int
}

func newUploadReader() uploadReader {
	return uploadReader{buf: make([]byte, 0, wireBlockSize), piece: -1, lastPiece: -1}
}

// block returns n bytes at begin of piece, read with read unless already read ahead;
// pieceSize bounds the read ahead. The slice is valid until the next call.
func (u *uploadReader) block(read blockReader, pieceSize int64, piece, begin, n int) ([]byte, error) {
	inOrder := piece == u.lastPiece && begin == u.lastEnd
	u.lastPiece, u.lastEnd = piece, begin+n
	if piece == u.piece && begin >= u.begin && begin+n <= u.end {
		return u.buf[begin-u.begin : begin-u.begin+n], nil
	}
	m := n
	if inOrder {
		m = max(n, min(uploadReadAhead, int(pieceSize)-begin))
	}
	if cap(u.buf) < m {
		u.buf = make([]byte, m)
	}
	u.buf = u.buf[:m]
	if err := read(piece, begin, u.buf); err != nil {
		u.piece = -1
		return nil, err
	}
	u.piece, u.begin, u.end = piece, begin, begin+m
	return u.buf[:n], nil
}
