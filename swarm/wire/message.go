package wire

import (
	"encoding/binary"
	"fmt"
)

// ID is a message's type byte.
type ID uint8

// Message IDs of BEP 3, BEP 6 (Fast Extension) and BEP 10 (Extension Protocol).
const (
	Choke         ID = 0
	Unchoke       ID = 1
	Interested    ID = 2
	NotInterested ID = 3
	Have          ID = 4
	Bitfield      ID = 5
	Request       ID = 6
	Piece         ID = 7
	Cancel        ID = 8
	Port          ID = 9
	Suggest       ID = 0x0d
	HaveAll       ID = 0x0e
	HaveNone      ID = 0x0f
	Reject        ID = 0x10
	AllowedFast   ID = 0x11
	Extended      ID = 20
	HashRequest   ID = 21 // BEP 52
	Hashes        ID = 22 // BEP 52
	HashReject    ID = 23 // BEP 52
)

var idNames = [...]string{
	Choke: "choke", Unchoke: "unchoke", Interested: "interested", NotInterested: "not-interested",
	Have: "have", Bitfield: "bitfield", Request: "request", Piece: "piece", Cancel: "cancel",
	Port: "port", Suggest: "suggest", HaveAll: "have-all", HaveNone: "have-none",
	Reject: "reject", AllowedFast: "allowed-fast", Extended: "extended",
	HashRequest: "hash-request", Hashes: "hashes", HashReject: "hash-reject",
}

// Known reports whether id is one this package decodes. Reader.Read returns messages with
// unknown IDs too, so the caller can ignore them as BEP 3 asks (and log them if it likes).
func (id ID) Known() bool { return int(id) < len(idNames) && idNames[id] != "" }

func (id ID) String() string {
	if id.Known() {
		return idNames[id]
	}
	return fmt.Sprintf("unknown(%d)", uint8(id))
}

// payloadSize is the exact payload length (after the ID byte) of fixed-size messages, or -1
// for messages whose payload varies.
func (id ID) payloadSize() int {
	switch id {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return 0
	case Have, Suggest, AllowedFast:
		return 4
	case Request, Cancel, Reject:
		return 12
	case Port:
		return 2
	case HashRequest, HashReject:
		return hashHeaderLen
	}
	return -1
}

// Message is one decoded wire message. Which fields mean something depends on ID:
//
//	Keepalive                      no other field (a zero-length frame)
//	Have, Suggest, AllowedFast     Index
//	Request, Cancel, Reject        Index, Begin, Length
//	Piece                          Index, Begin, Block (Length = len(Block) when decoded)
//	Bitfield                       Bitfield
//	Port                           Port (BEP 5 DHT port)
//	Extended                       ExtID (0 is the BEP 10 handshake), Payload
//	HashRequest, Hashes, HashReject Payload (see ParseHashRequest, ParseHashes)
//	an unknown ID                  Payload (the raw body after the ID byte)
type Message struct {
	Keepalive bool
	ID        ID
	Index     uint32
	Begin     uint32
	Length    uint32
	Bitfield  []byte
	Block     []byte
	Port      uint16
	ExtID     uint8
	Payload   []byte
}

// FrameLen is the size of the message on the wire, length prefix included.
func (m *Message) FrameLen() int { return 4 + m.bodyLen() }

// bodyLen is the value of the length prefix.
func (m *Message) bodyLen() int {
	if m.Keepalive {
		return 0
	}
	switch m.ID {
	case HashRequest, HashReject, Hashes:
		return 1 + len(m.Payload) // carried whole in Payload, like an unknown message's
	}
	if n := m.ID.payloadSize(); n >= 0 {
		return 1 + n
	}
	switch m.ID {
	case Bitfield:
		return 1 + len(m.Bitfield)
	case Piece:
		return 1 + 8 + len(m.Block)
	case Extended:
		return 1 + 1 + len(m.Payload)
	}
	return 1 + len(m.Payload)
}

// AppendTo appends the whole frame, length prefix included, to b. For Piece it writes
// len(Block), not Length.
func (m *Message) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(m.bodyLen()))
	if m.Keepalive {
		return b
	}
	b = append(b, byte(m.ID))
	switch m.ID {
	case Have, Suggest, AllowedFast:
		b = binary.BigEndian.AppendUint32(b, m.Index)
	case Request, Cancel, Reject:
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint32(b, m.Begin)
		b = binary.BigEndian.AppendUint32(b, m.Length)
	case Piece:
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint32(b, m.Begin)
		b = append(b, m.Block...)
	case Bitfield:
		b = append(b, m.Bitfield...)
	case Port:
		b = binary.BigEndian.AppendUint16(b, m.Port)
	case Extended:
		b = append(b, m.ExtID)
		b = append(b, m.Payload...)
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
	default:
		b = append(b, m.Payload...)
	}
	return b
}

// PieceHeaderLen is the size of the part of a piece frame before the block.
const PieceHeaderLen = 4 + 1 + 8

// AppendPieceHeader appends the first PieceHeaderLen bytes of a piece frame carrying a block
// of blockLen bytes. A writer sends it followed by the block itself (e.g. with net.Buffers),
// so a 16 KiB block read from disk is never copied into a frame buffer.
func AppendPieceHeader(b []byte, index, begin uint32, blockLen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+8+blockLen))
	b = append(b, byte(Piece))
	b = binary.BigEndian.AppendUint32(b, index)
	return binary.BigEndian.AppendUint32(b, begin)
}

// String describes the message for logs; it never prints block or payload bytes.
func (m Message) String() string {
	if m.Keepalive {
		return "keepalive"
	}
	switch m.ID {
	case Have, Suggest, AllowedFast:
		return fmt.Sprintf("%s %d", m.ID, m.Index)
	case Request, Cancel, Reject:
		return fmt.Sprintf("%s %d/%d+%d", m.ID, m.Index, m.Begin, m.Length)
	case Piece:
		return fmt.Sprintf("piece %d/%d+%d", m.Index, m.Begin, len(m.Block))
	case Bitfield:
		return fmt.Sprintf("bitfield (%d bytes)", len(m.Bitfield))
	case Port:
		return fmt.Sprintf("port %d", m.Port)
	case Extended:
		return fmt.Sprintf("extended %d (%d bytes)", m.ExtID, len(m.Payload))
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return m.ID.String()
	}
	return fmt.Sprintf("%s (%d bytes)", m.ID, len(m.Payload))
}
