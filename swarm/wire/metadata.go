package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/anacrolix/torrent/bencode"
)

// BEP 9 (ut_metadata): fetching the info dictionary from peers, for magnet links.

// ExtMetadata is the BEP 10 extension name of BEP 9.
const ExtMetadata = "ut_metadata"

// MetadataPieceLen is the size of every metadata piece but the last.
const MetadataPieceLen = 16 << 10

// MetadataType is a ut_metadata message's msg_type.
type MetadataType int

// The ut_metadata message types.
const (
	MetadataRequest MetadataType = 0
	MetadataData    MetadataType = 1
	MetadataReject  MetadataType = 2
)

// ErrMetadataMessage: a ut_metadata payload that does not follow BEP 9.
var ErrMetadataMessage = errors.New("wire: bad ut_metadata message")

// MetadataMessage is one ut_metadata message. TotalSize and Data are only for MetadataData.
// After ParseMetadataMessage, Data aliases the payload it was parsed from.
type MetadataMessage struct {
	Type      MetadataType
	Piece     int
	TotalSize int
	Data      []byte
}

// AppendTo appends the extended-message payload (the bencoded dict, then Data) to b. The
// caller frames it as Message{ID: Extended, ExtID: <the peer's id for ut_metadata>}.
func (m MetadataMessage) AppendTo(b []byte) ([]byte, error) {
	d := map[string]int64{"msg_type": int64(m.Type), "piece": int64(m.Piece)}
	if m.Type == MetadataData {
		d["total_size"] = int64(m.TotalSize)
	}
	enc, err := bencode.Marshal(d)
	if err != nil {
		return b, fmt.Errorf("encode ut_metadata message: %w", err)
	}
	b = append(b, enc...)
	if m.Type == MetadataData {
		b = append(b, m.Data...)
	}
	return b, nil
}

// ParseMetadataMessage decodes a ut_metadata payload. Unknown keys are ignored (BEP 9 allows
// extra ones, e.g. a client's total_size on a reject); a missing or out-of-range msg_type or
// piece, a data message without a positive total_size, or data over MetadataPieceLen is an
// error. Bytes after the dict are only allowed in a data message.
func ParseMetadataMessage(payload []byte) (MetadataMessage, error) {
	var raw map[string]bencode.Bytes
	dec := bencode.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&raw); err != nil {
		return MetadataMessage{}, fmt.Errorf("%w: %v", ErrMetadataMessage, err)
	}
	typ, ok := intField(raw["msg_type"], 0, 2)
	if !ok {
		return MetadataMessage{}, fmt.Errorf("%w: no valid msg_type", ErrMetadataMessage)
	}
	piece, ok := intField(raw["piece"], 0, math.MaxInt32)
	if !ok {
		return MetadataMessage{}, fmt.Errorf("%w: no valid piece", ErrMetadataMessage)
	}
	m := MetadataMessage{Type: MetadataType(typ), Piece: piece}
	rest := payload[dec.Offset:]
	if m.Type != MetadataData {
		if len(rest) != 0 {
			return MetadataMessage{}, fmt.Errorf("%w: %d bytes after a msg_type %d dict", ErrMetadataMessage, len(rest), typ)
		}
		return m, nil
	}
	if m.TotalSize, ok = intField(raw["total_size"], 1, math.MaxInt32); !ok {
		return MetadataMessage{}, fmt.Errorf("%w: data message without a valid total_size", ErrMetadataMessage)
	}
	if len(rest) > MetadataPieceLen {
		return MetadataMessage{}, fmt.Errorf("%w: %d bytes of data, more than a %d-byte piece", ErrMetadataMessage, len(rest), MetadataPieceLen)
	}
	m.Data = rest
	return m, nil
}
