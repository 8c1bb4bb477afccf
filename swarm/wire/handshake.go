package wire

import (
	"errors"
	"fmt"
	"io"
)

// Protocol is the protocol string that opens every BEP 3 handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the size of a whole handshake; HandshakeHeaderLen the part before the peer id.
const (
	HandshakeHeaderLen = 1 + len(Protocol) + 8 + 20
	HandshakeLen       = HandshakeHeaderLen + 20
)

// ErrBadProtocol: the peer's handshake does not start with "\x13BitTorrent protocol" (an
// encrypted stream, another protocol, or garbage).
var ErrBadProtocol = errors.New("wire: not a BitTorrent handshake")

// Reserved is the handshake's 8 reserved bytes, where extensions announce themselves.
type Reserved [8]byte

// Extension bits: BEP 10 extension protocol, BEP 5 DHT, BEP 6 Fast Extension, BEP 52 v2.
const (
	extendedByte, extendedBit = 5, 0x10
	dhtByte, dhtBit           = 7, 0x01
	fastByte, fastBit         = 7, 0x04
	v2Byte, v2Bit             = 7, 0x10
)

// Extended reports the BEP 10 extension protocol bit.
func (r Reserved) Extended() bool { return r[extendedByte]&extendedBit != 0 }

// DHT reports the BEP 5 DHT bit (the peer may send a port message).
func (r Reserved) DHT() bool { return r[dhtByte]&dhtBit != 0 }

// Fast reports the BEP 6 Fast Extension bit.
func (r Reserved) Fast() bool { return r[fastByte]&fastBit != 0 }

// V2 reports the BEP 52 bit: a peer that names a hybrid torrent's v1 info-hash and can
// switch the connection to the v2 one (the answering side then replies with the truncated
// v2 info-hash).
func (r Reserved) V2() bool { return r[v2Byte]&v2Bit != 0 }

// SetExtended sets or clears the BEP 10 bit.
func (r *Reserved) SetExtended(on bool) { r.set(extendedByte, extendedBit, on) }

// SetDHT sets or clears the BEP 5 bit.
func (r *Reserved) SetDHT(on bool) { r.set(dhtByte, dhtBit, on) }

// SetFast sets or clears the BEP 6 bit.
func (r *Reserved) SetFast(on bool) { r.set(fastByte, fastBit, on) }

// SetV2 sets or clears the BEP 52 bit.
func (r *Reserved) SetV2(on bool) { r.set(v2Byte, v2Bit, on) }

func (r *Reserved) set(i int, bit byte, on bool) {
	if on {
		r[i] |= bit
	} else {
		r[i] &^= bit
	}
}

// Handshake is the BEP 3 handshake: protocol string, reserved bytes, info-hash, peer id.
type Handshake struct {
	Reserved Reserved
	InfoHash [20]byte
	PeerID   [20]byte
}

// AppendTo appends the 68-byte handshake to b.
func (h *Handshake) AppendTo(b []byte) []byte {
	b = append(b, byte(len(Protocol)))
	b = append(b, Protocol...)
	b = append(b, h.Reserved[:]...)
	b = append(b, h.InfoHash[:]...)
	return append(b, h.PeerID[:]...)
}

// WriteHandshake writes the whole handshake in one Write, so it leaves in one segment.
func WriteHandshake(w io.Writer, h Handshake) error {
	var buf [HandshakeLen]byte
	if _, err := w.Write(h.AppendTo(buf[:0])); err != nil {
		return fmt.Errorf("write handshake: %w", err)
	}
	return nil
}

// ReadHandshakeHeader reads the handshake up to and including the info-hash. It stops there
// because the accepting side must pick the torrent by info-hash before it answers, and some
// peers wait for our handshake before sending their peer id.
func ReadHandshakeHeader(r io.Reader) (Reserved, [20]byte, error) {
	var buf [HandshakeHeaderLen]byte
	// Read the protocol string first: a non-BitTorrent peer may send less than 48 bytes and
	// then wait, and it should get ErrBadProtocol, not a hang.
	if _, err := io.ReadFull(r, buf[:1+len(Protocol)]); err != nil {
		return Reserved{}, [20]byte{}, fmt.Errorf("read handshake: %w", err)
	}
	if buf[0] != byte(len(Protocol)) || string(buf[1:1+len(Protocol)]) != Protocol {
		return Reserved{}, [20]byte{}, fmt.Errorf("%w: starts with %q", ErrBadProtocol, buf[:1+len(Protocol)])
	}
	if _, err := io.ReadFull(r, buf[1+len(Protocol):]); err != nil {
		return Reserved{}, [20]byte{}, fmt.Errorf("read handshake: %w", err)
	}
	var res Reserved
	var ih [20]byte
	copy(res[:], buf[1+len(Protocol):])
	copy(ih[:], buf[1+len(Protocol)+8:])
	return res, ih, nil
}

// ReadPeerID reads the last 20 bytes of a handshake.
func ReadPeerID(r io.Reader) ([20]byte, error) {
	var id [20]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return id, fmt.Errorf("read handshake peer id: %w", err)
	}
	return id, nil
}
