package utp

import (
	"encoding/binary"
	"errors"
)

// Packet types (BEP 29), the high nibble of a header's first byte.
const (
	stData  = 0
	stFin   = 1
	stState = 2
	stReset = 3
	stSyn   = 4
)

// version is the only uTP version there is, the low nibble of the first byte.
const version = 1

// headerLen is the fixed part of every packet.
const headerLen = 20

// extSACK is the selective-ACK extension: a bitmask of the packets past ack_nr+1 that the
// sender has, bit i standing for ack_nr+2+i.
const extSACK = 1

// maxSACKBytes bounds the selective-ACK bitmask we send, a multiple of 4 bytes as BEP 29
// asks. We accept any length: libtorrent sends ceil(span/8) bytes for the span of its
// reorder buffer (1, 2, 15, 21, ...; more than 32 once it holds packets over 256 past a
// hole), and it puts that mask on every packet, data too, while a hole lasts.
const maxSACKBytes = 32

// header is a decoded packet header; payload and sack alias the datagram they came from.
type header struct {
	typ     uint8
	connID  uint16
	ts      uint32 // sender's clock, microseconds
	tsDiff  uint32 // sender's clock minus the timestamp of the last packet it received
	wnd     uint32 // receive window the sender has free, bytes
	seq     uint16
	ack     uint16
	sack    []byte // nil when the packet has no selective ACK
	payload []byte
}

var errBadPacket = errors.New("utp: malformed packet")

// decode parses a datagram. It never panics, whatever b holds; unknown extensions are
// skipped.
func decode(b []byte) (header, error) {
	var h header
	if len(b) < headerLen {
		return h, errBadPacket
	}
	h.typ = b[0] >> 4
	if b[0]&0xf != version || h.typ > stSyn {
		return h, errBadPacket
	}
	next := b[1]
	h.connID = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.tsDiff = binary.BigEndian.Uint32(b[8:])
	h.wnd = binary.BigEndian.Uint32(b[12:])
	h.seq = binary.BigEndian.Uint16(b[16:])
	h.ack = binary.BigEndian.Uint16(b[18:])
	rest := b[headerLen:]
	for n := 0; next != 0; n++ {
		if len(rest) < 2 || n > 8 {
			return h, errBadPacket
		}
		typ, l := next, int(rest[1])
		next = rest[0]
		if len(rest) < 2+l {
			return h, errBadPacket
		}
		if typ == extSACK && l > 0 {
			h.sack = rest[2 : 2+l]
		}
		rest = rest[2+l:]
	}
	h.payload = rest
	return h, nil
}

// encode appends the packet to dst.
func (h *header) encode(dst []byte) []byte {
	var ext byte
	if len(h.sack) > 0 {
		ext = extSACK
	}
	var b [headerLen]byte
	b[0] = h.typ<<4 | version
	b[1] = ext
	binary.BigEndian.PutUint16(b[2:], h.connID)
	binary.BigEndian.PutUint32(b[4:], h.ts)
	binary.BigEndian.PutUint32(b[8:], h.tsDiff)
	binary.BigEndian.PutUint32(b[12:], h.wnd)
	binary.BigEndian.PutUint16(b[16:], h.seq)
	binary.BigEndian.PutUint16(b[18:], h.ack)
	dst = append(dst, b[:]...)
	if ext != 0 {
		dst = append(dst, 0, byte(len(h.sack)))
		dst = append(dst, h.sack...)
	}
	return append(dst, h.payload...)
}

// seqLess compares sequence numbers modulo 2^16.
func seqLess(a, b uint16) bool { return int16(a-b) < 0 }
