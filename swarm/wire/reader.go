package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLen is the default limit on a frame's length prefix. A piece frame is 16 KiB + 9,
// a ut_metadata piece 16 KiB plus a small dict; 1 MiB also fits the bitfield of a torrent of
// 8 million pieces. Use MaxLenFor for bigger ones.
const DefaultMaxLen = 1 << 20

// MaxLenFor is the frame limit for a torrent of numPieces pieces: DefaultMaxLen, or more if the
// torrent's bitfield message needs it.
func MaxLenFor(numPieces int) int { return max(DefaultMaxLen, 1+(numPieces+7)/8) }

// Errors a Reader returns (wrapped, with the details); test them with errors.Is.
var (
	// ErrTooLong: a length prefix over the Reader's limit.
	ErrTooLong = errors.New("wire: message too long")
	// ErrMalformed: a payload of the wrong size for its message ID.
	ErrMalformed = errors.New("wire: malformed message")
)

const (
	// initialBuf holds a few piece frames, so one read syscall usually brings several.
	initialBuf = 64 << 10
	// shrinkAbove: a buffer grown past this for one big message (a bitfield, an unknown
	// message) is given back once that message is consumed, so idle peers stay small.
	shrinkAbove = 256 << 10
)

// Reader decodes messages from a stream. It reads ahead: once a Reader is made, every read of
// the stream must go through it. It is not safe for concurrent use; one goroutine owns it.
//
// After an error from the stream (a read deadline, say) Read may be called again and resumes
// mid-frame, since nothing is consumed until a frame is whole. After ErrMalformed the bad
// frame has been consumed and the next Read decodes the next one, though a peer that sends
// malformed messages is best dropped. ErrTooLong is sticky: the frame cannot be skipped
// without reading it, so the connection must be closed.
type Reader struct {
	src    io.Reader
	maxLen int
	// buf[r:w] is read but not yet decoded.
	buf  []byte
	r, w int
}

// NewReader returns a Reader of src that rejects frames longer than maxLen bytes (length
// prefix excluded); maxLen <= 0 means DefaultMaxLen.
func NewReader(src io.Reader, maxLen int) *Reader {
	rd := &Reader{src: src}
	rd.SetMaxLen(maxLen)
	return rd
}

// SetMaxLen changes the frame limit, e.g. once a magnet's metadata tells the piece count.
func (rd *Reader) SetMaxLen(maxLen int) {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	rd.maxLen = maxLen
}

// Read decodes the next message. At a clean end of stream between frames it returns io.EOF;
// a stream cut inside a frame gives an error wrapping io.ErrUnexpectedEOF.
//
// ALIASING: Block, Bitfield and Payload of the returned Message point into the Reader's
// buffer and are valid only until the next call to Read. Copy them (or write them to disk)
// before reading again. This keeps the piece path free of allocations.
//
// Messages with an unknown ID are returned, not skipped, with the body in Payload; BEP 3 says
// to ignore them, and the caller may also log them. Their size is bounded like any frame's.
func (rd *Reader) Read() (Message, error) {
	rd.maybeShrink()
	if err := rd.fill(4); err != nil {
		if err == io.EOF && rd.r == rd.w {
			return Message{}, io.EOF
		}
		return Message{}, fmt.Errorf("read message length: %w", unexpected(err))
	}
	n := binary.BigEndian.Uint32(rd.buf[rd.r:])
	if uint64(n) > uint64(rd.maxLen) {
		return Message{}, fmt.Errorf("%w: length prefix %d over the limit of %d", ErrTooLong, n, rd.maxLen)
	}
	if n == 0 {
		rd.r += 4
		return Message{Keepalive: true}, nil
	}
	if err := rd.fill(4 + int(n)); err != nil {
		return Message{}, fmt.Errorf("read %d-byte message: %w", n, unexpected(err))
	}
	end := rd.r + 4 + int(n)
	// The cap stops a caller's append from overwriting the next frame.
	body := rd.buf[rd.r+4 : end : end]
	rd.r = end
	return decode(body)
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fill makes at least n bytes available in buf[r:w], compacting or growing the buffer as
// needed. It grows by doubling only as data arrives, so a peer that announces a large frame
// and sends nothing does not make the Reader allocate maxLen.
func (rd *Reader) fill(n int) error {
	for rd.w-rd.r < n {
		if rd.r == rd.w {
			rd.r, rd.w = 0, 0
		}
		if rd.w == len(rd.buf) {
			switch {
			case len(rd.buf) == 0:
				rd.buf = make([]byte, initialBuf)
			case rd.r > 0 && (n <= len(rd.buf) || rd.w-rd.r <= len(rd.buf)/2):
				// Room at the front: move the unread tail there rather than grow.
				rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
				rd.r = 0
			default:
				nb := make([]byte, max(min(2*len(rd.buf), n), rd.w-rd.r+1))
				rd.w = copy(nb, rd.buf[rd.r:rd.w])
				rd.r = 0
				rd.buf = nb
			}
		}
		k, err := rd.src.Read(rd.buf[rd.w:])
		rd.w += k
		if err != nil {
			if rd.w-rd.r >= n {
				return nil
			}
			return err
		}
	}
	return nil
}

// maybeShrink drops a buffer grown for one big message once its data is consumed.
func (rd *Reader) maybeShrink() {
	if len(rd.buf) <= shrinkAbove || rd.w-rd.r > initialBuf {
		return
	}
	nb := make([]byte, initialBuf)
	rd.w = copy(nb, rd.buf[rd.r:rd.w])
	rd.r = 0
	rd.buf = nb
}

// decode parses one frame body (ID byte onward).
func decode(body []byte) (Message, error) {
	id := ID(body[0])
	p := body[1:]
	m := Message{ID: id}
	if want := id.payloadSize(); want >= 0 && len(p) != want {
		return Message{}, fmt.Errorf("%w: %s with a %d-byte payload, want %d", ErrMalformed, id, len(p), want)
	}
	switch id {
	case Have, Suggest, AllowedFast:
		m.Index = binary.BigEndian.Uint32(p)
	case Request, Cancel, Reject:
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Length = binary.BigEndian.Uint32(p[8:])
	case Piece:
		if len(p) < 8 {
			return Message{}, fmt.Errorf("%w: piece with a %d-byte payload, want at least 8", ErrMalformed, len(p))
		}
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Block = p[8:]
		m.Length = uint32(len(m.Block))
	case Bitfield:
		m.Bitfield = p
	case Port:
		m.Port = binary.BigEndian.Uint16(p)
	case Extended:
		if len(p) < 1 {
			return Message{}, fmt.Errorf("%w: extended message without an extended id", ErrMalformed)
		}
		m.ExtID = p[0]
		m.Payload = p[1:]
	case Hashes:
		if len(p) < hashHeaderLen || (len(p)-hashHeaderLen)%HashLen != 0 {
			return Message{}, fmt.Errorf("%w: hashes with a %d-byte payload, want %d and a multiple of %d", ErrMalformed, len(p), hashHeaderLen, HashLen)
		}
		m.Payload = p
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
	default:
		m.Payload = p
	}
	return m, nil
}
