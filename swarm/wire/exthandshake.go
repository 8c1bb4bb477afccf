package wire

import (
	"errors"
	"fmt"
	"math"

	"github.com/anacrolix/torrent/bencode"
)

// ExtHandshake is the BEP 10 extension handshake (extended message 0). Zero fields are left
// out when encoding.
type ExtHandshake struct {
	// M maps extension names (e.g. "ut_metadata") to the extended message ID the sender wants
	// to receive them under; 0 means the sender disables that extension.
	M map[string]int
	// V is the client name and version.
	V string
	// P is the sender's listening TCP port.
	P int
	// Reqq is how many outstanding requests the sender keeps before dropping more.
	Reqq int
	// YourIP is the receiver's address as the sender sees it, 4 or 16 bytes.
	YourIP []byte
	// IPv4 and IPv6 are the sender's own addresses, 4 and 16 bytes.
	IPv4, IPv6 []byte
	// MetadataSize is the size of the info dict in bytes (BEP 9).
	MetadataSize int
}

// MaxExtID is the highest extended message ID a handshake's m dictionary may map to.
const MaxExtID = math.MaxUint8

// ErrExtHandshake: the payload is not a bencoded dictionary.
var ErrExtHandshake = errors.New("wire: bad extension handshake")

// Encode bencodes the handshake.
func (h ExtHandshake) Encode() ([]byte, error) {
	d := map[string]any{}
	m := map[string]int64{}
	for name, id := range h.M {
		if id < 0 || id > MaxExtID {
			return nil, fmt.Errorf("encode extension handshake: extension %q has id %d, want 0..%d", name, id, MaxExtID)
		}
		m[name] = int64(id)
	}
	// BEP 10 requires m even when empty.
	d["m"] = m
	if h.V != "" {
		d["v"] = h.V
	}
	if h.P != 0 {
		d["p"] = int64(h.P)
	}
	if h.Reqq != 0 {
		d["reqq"] = int64(h.Reqq)
	}
	if len(h.YourIP) != 0 {
		d["yourip"] = h.YourIP
	}
	if len(h.IPv4) != 0 {
		d["ipv4"] = h.IPv4
	}
	if len(h.IPv6) != 0 {
		d["ipv6"] = h.IPv6
	}
	if h.MetadataSize != 0 {
		d["metadata_size"] = int64(h.MetadataSize)
	}
	b, err := bencode.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode extension handshake: %w", err)
	}
	return b, nil
}

// ParseExtHandshake decodes an extension handshake payload. Only a payload that is not a
// bencoded dictionary is an error: unknown keys are ignored, and so is any known field of the
// wrong type or out of range (a port over 65535, a negative size, a 5-byte address, an m entry
// that is not an integer 0..255), because one odd field should not cost us the peer.
// Bytes after the dictionary are ignored too.
func ParseExtHandshake(b []byte) (ExtHandshake, error) {
	var raw map[string]bencode.Bytes
	if err := bencode.Unmarshal(b, &raw); err != nil {
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return ExtHandshake{}, fmt.Errorf("%w: %v", ErrExtHandshake, err)
		}
	}
	var h ExtHandshake
	if v, ok := raw["m"]; ok {
		var m map[string]bencode.Bytes
		if bencode.Unmarshal(v, &m) == nil {
			for name, rv := range m {
				if id, ok := intField(rv, 0, MaxExtID); ok {
					if h.M == nil {
						h.M = make(map[string]int, len(m))
					}
					h.M[name] = id
				}
			}
		}
	}
	if v := raw["v"]; len(v) > 0 && v[0] >= '0' && v[0] <= '9' {
		var s string
		if bencode.Unmarshal(v, &s) == nil {
			h.V = s
		}
	}
	h.P, _ = intField(raw["p"], 0, math.MaxUint16)
	h.Reqq, _ = intField(raw["reqq"], 0, math.MaxInt32)
	h.MetadataSize, _ = intField(raw["metadata_size"], 0, math.MaxInt32)
	h.YourIP = bytesField(raw["yourip"], 4, 16)
	h.IPv4 = bytesField(raw["ipv4"], 4)
	h.IPv6 = bytesField(raw["ipv6"], 16)
	return h, nil
}

// intField decodes a bencoded integer within [lo, hi]; anything else reports false.
func intField(v bencode.Bytes, lo, hi int64) (int, bool) {
	if len(v) == 0 || v[0] != 'i' {
		return 0, false
	}
	var n int64
	if bencode.Unmarshal(v, &n) != nil || n < lo || n > hi {
		return 0, false
	}
	return int(n), true
}

// bytesField decodes a bencoded string whose length is one of sizes; anything else is nil.
func bytesField(v bencode.Bytes, sizes ...int) []byte {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return nil
	}
	var s []byte
	if bencode.Unmarshal(v, &s) != nil {
		return nil
	}
	for _, n := range sizes {
		if len(s) == n {
			return s
		}
	}
	return nil
}
