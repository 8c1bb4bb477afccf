package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// BEP 52's merkle hash messages. A hash request names a file by its pieces root and asks for
// Length hashes of one layer of the file's tree (BaseLayer, 0 for the 16 KiB block hashes),
// starting at Index, with ProofLayers ancestor layers of uncle hashes; a hashes message
// answers with the same fields followed by the hashes, a hash reject with the fields alone.

// HashLen is the size of one SHA-256 hash in these messages.
const HashLen = 32

// hashHeaderLen is the payload before the hashes: pieces root and four 32-bit fields.
const hashHeaderLen = HashLen + 4*4

// Bounds on the fields we accept: enough for every real torrent, small enough that a hashes
// message stays well under a frame. MaxHashLength blocks of 16 KiB are a 128 MiB piece
// (libtorrent's limit too); a file of 2^63 bytes has 49 layers above its blocks.
const (
	MaxHashLength  = 8192
	MaxHashLayer   = 63
	MaxProofLayers = 63
)

// ErrHashMessage: a hash request, hashes or hash reject payload that is malformed or whose
// fields are out of bounds.
var ErrHashMessage = errors.New("wire: bad hash message")

// HashRequestFields are the fields every BEP 52 hash message carries; a hash reject echoes
// the request's.
type HashRequestFields struct {
	PiecesRoot  [HashLen]byte
	BaseLayer   uint32
	Index       uint32
	Length      uint32
	ProofLayers uint32
}

func (h HashRequestFields) String() string {
	return fmt.Sprintf("root %x… layer %d [%d+%d] proof %d", h.PiecesRoot[:4], h.BaseLayer, h.Index, h.Length, h.ProofLayers)
}

// Check applies our bounds: Length 1..MaxHashLength, layers within MaxHashLayer and
// MaxProofLayers, and Index+Length within a 32-bit layer. A request outside them is
// answered with a hash reject; a hashes message outside them is refused by ParseHashes.
func (h HashRequestFields) Check() error {
	switch {
	case h.Length == 0 || h.Length > MaxHashLength:
		return fmt.Errorf("%w: length %d not in 1..%d", ErrHashMessage, h.Length, MaxHashLength)
	case h.BaseLayer > MaxHashLayer:
		return fmt.Errorf("%w: base layer %d over %d", ErrHashMessage, h.BaseLayer, MaxHashLayer)
	case h.ProofLayers > MaxProofLayers:
		return fmt.Errorf("%w: %d proof layers, over %d", ErrHashMessage, h.ProofLayers, MaxProofLayers)
	case uint64(h.Index)+uint64(h.Length) > 1<<32-1:
		return fmt.Errorf("%w: index %d + length %d overflows", ErrHashMessage, h.Index, h.Length)
	}
	return nil
}

// NumProofHashes is how many uncle hashes follow the Length base-layer hashes in an answer:
// the base hashes themselves give the first log2(Length) layers above them (Length rounded
// up to a power of two), so BEP 52 leaves the first log2(Length)-1 proof layers out, and each
// further one adds one uncle. Call it on fields that passed Check.
func (h HashRequestFields) NumProofHashes() int {
	computable := bits.Len32(h.Length-1) - 1 // log2 of Length rounded up, minus one
	return max(0, int(h.ProofLayers)-computable)
}

// Message frames the fields as a hash request or hash reject (id).
func (h HashRequestFields) Message(id ID) Message {
	return Message{ID: id, Payload: h.appendTo(make([]byte, 0, hashHeaderLen))}
}

func (h HashRequestFields) appendTo(b []byte) []byte {
	b = append(b, h.PiecesRoot[:]...)
	b = binary.BigEndian.AppendUint32(b, h.BaseLayer)
	b = binary.BigEndian.AppendUint32(b, h.Index)
	b = binary.BigEndian.AppendUint32(b, h.Length)
	return binary.BigEndian.AppendUint32(b, h.ProofLayers)
}

// HashesMessage frames a hashes message: the fields, then hashes (base layer first, then the
// uncles from the lowest up).
func HashesMessage(h HashRequestFields, hashes [][HashLen]byte) Message {
	b := h.appendTo(make([]byte, 0, hashHeaderLen+HashLen*len(hashes)))
	for _, x := range hashes {
		b = append(b, x[:]...)
	}
	return Message{ID: Hashes, Payload: b}
}

// ParseHashRequest reads the payload of a hash request or hash reject. It checks the size
// only: the fields' bounds are Check's, since an out-of-bounds request still deserves a
// reject that echoes it.
func ParseHashRequest(payload []byte) (HashRequestFields, error) {
	if len(payload) != hashHeaderLen {
		return HashRequestFields{}, fmt.Errorf("%w: %d-byte payload, want %d", ErrHashMessage, len(payload), hashHeaderLen)
	}
	return parseHashFields(payload), nil
}

func parseHashFields(p []byte) HashRequestFields {
	var h HashRequestFields
	copy(h.PiecesRoot[:], p)
	h.BaseLayer = binary.BigEndian.Uint32(p[HashLen:])
	h.Index = binary.BigEndian.Uint32(p[HashLen+4:])
	h.Length = binary.BigEndian.Uint32(p[HashLen+8:])
	h.ProofLayers = binary.BigEndian.Uint32(p[HashLen+12:])
	return h
}

// ParseHashes reads a hashes payload: fields within Check's bounds and exactly Length +
// NumProofHashes hashes after them. The hashes are copied out (at most MaxHashLength +
// MaxProofLayers of them, about 260 KiB), so they outlive the Reader's buffer.
func ParseHashes(payload []byte) (HashRequestFields, [][HashLen]byte, error) {
	if len(payload) < hashHeaderLen {
		return HashRequestFields{}, nil, fmt.Errorf("%w: %d-byte hashes payload, want at least %d", ErrHashMessage, len(payload), hashHeaderLen)
	}
	h := parseHashFields(payload)
	if err := h.Check(); err != nil {
		return h, nil, err
	}
	want := int(h.Length) + h.NumProofHashes()
	rest := payload[hashHeaderLen:]
	if len(rest) != want*HashLen {
		return h, nil, fmt.Errorf("%w: %d bytes of hashes for %s, want %d hashes", ErrHashMessage, len(rest), h, want)
	}
	hashes := make([][HashLen]byte, want)
	for i := range hashes {
		copy(hashes[i][:], rest[i*HashLen:])
	}
	return h, hashes, nil
}
