package wire

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// BEP 11 (ut_pex): peers telling each other which peers they are connected to.

// ExtPex is the BEP 10 extension name of BEP 11.
const ExtPex = "ut_pex"

// PexFlags are the per-peer flags of a ut_pex added entry (BEP 11).
type PexFlags byte

// The BEP 11 flags; other bits are reserved and kept as they came.
const (
	PexEncryption PexFlags = 0x01 // prefers encryption
	PexSeed       PexFlags = 0x02 // seed or upload only
	PexUTP        PexFlags = 0x04 // supports uTP
	PexHolepunch  PexFlags = 0x08 // supports ut_holepunch
	PexReachable  PexFlags = 0x10 // the sender connected to it: it accepts connections
)

// MaxPexPeers is how many added and how many dropped peers of each address family
// ParsePexMessage keeps from one message: BEP 11 asks senders for at most 50, and a peer
// that sends more gets the first 50 read.
const MaxPexPeers = 50

// ErrPexMessage: a ut_pex payload that is not a bencoded dictionary.
var ErrPexMessage = errors.New("wire: bad ut_pex message")

// PexPeer is one added peer: its listening address and flags.
type PexPeer struct {
	Addr  netip.AddrPort
	Flags PexFlags
}

// PexMessage is one ut_pex message. IPv4 and IPv6 peers share the lists; encoding sorts them
// into the added/added6 and dropped/dropped6 keys by family (a v4-mapped v6 address counts
// as v4).
type PexMessage struct {
	Added   []PexPeer
	Dropped []netip.AddrPort
}

// Encode bencodes the message. added, added.f and dropped are always present (some clients
// expect them), the IPv6 keys only when they have entries. Invalid addresses are an error.
func (m PexMessage) Encode() ([]byte, error) {
	var a4, f4, a6, f6, d4, d6 []byte
	for _, p := range m.Added {
		a := p.Addr.Addr().Unmap()
		if !p.Addr.IsValid() || a.Zone() != "" {
			return nil, fmt.Errorf("encode ut_pex: bad added address %v", p.Addr)
		}
		if a.Is4() {
			a4, f4 = appendCompact(a4, a, p.Addr.Port()), append(f4, byte(p.Flags))
		} else {
			a6, f6 = appendCompact(a6, a, p.Addr.Port()), append(f6, byte(p.Flags))
		}
	}
	for _, ap := range m.Dropped {
		a := ap.Addr().Unmap()
		if !ap.IsValid() || a.Zone() != "" {
			return nil, fmt.Errorf("encode ut_pex: bad dropped address %v", ap)
		}
		if a.Is4() {
			d4 = appendCompact(d4, a, ap.Port())
		} else {
			d6 = appendCompact(d6, a, ap.Port())
		}
	}
	d := map[string][]byte{"added": nonNil(a4), "added.f": nonNil(f4), "dropped": nonNil(d4)}
	if len(a6) > 0 {
		d["added6"], d["added6.f"] = a6, f6
	}
	if len(d6) > 0 {
		d["dropped6"] = d6
	}
	b, err := bencode.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode ut_pex: %w", err)
	}
	return b, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func appendCompact(b []byte, a netip.Addr, port uint16) []byte {
	b = append(b, a.AsSlice()...)
	return append(b, byte(port>>8), byte(port))
}

// ParsePexMessage decodes a ut_pex payload. Only a payload that is not a bencoded
// dictionary is an error. Everything else odd is skipped: a key of the wrong type, a
// trailing partial entry, an entry with port 0 or an unspecified, multicast or broadcast
// address, a v4-mapped address in a v6 list, a flags string whose length does not match its list (the flags are then 0).
// At most MaxPexPeers added and MaxPexPeers dropped peers of each family are kept.
func ParsePexMessage(b []byte) (PexMessage, error) {
	var raw map[string]bencode.Bytes
	if err := bencode.Unmarshal(b, &raw); err != nil {
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return PexMessage{}, fmt.Errorf("%w: %v", ErrPexMessage, err)
		}
	}
	var m PexMessage
	for _, fam := range []struct {
		added, flags, dropped string
		size                  int
	}{{"added", "added.f", "dropped", 6}, {"added6", "added6.f", "dropped6", 18}} {
		entries := stringField(raw[fam.added])
		flags := stringField(raw[fam.flags])
		if len(flags) != len(entries)/fam.size {
			flags = nil
		}
		n := 0
		for i := 0; i+fam.size <= len(entries) && n < MaxPexPeers; i += fam.size {
			ap, ok := compactPeer(entries[i:i+fam.size], fam.size)
			if !ok {
				continue
			}
			p := PexPeer{Addr: ap}
			if flags != nil {
				p.Flags = PexFlags(flags[i/fam.size])
			}
			m.Added = append(m.Added, p)
			n++
		}
		dropped := stringField(raw[fam.dropped])
		n = 0
		for i := 0; i+fam.size <= len(dropped) && n < MaxPexPeers; i += fam.size {
			if ap, ok := compactPeer(dropped[i:i+fam.size], fam.size); ok {
				m.Dropped = append(m.Dropped, ap)
				n++
			}
		}
	}
	return m, nil
}

// stringField decodes a bencoded string; anything else is nil.
func stringField(v bencode.Bytes) []byte {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return nil
	}
	var s []byte
	if bencode.Unmarshal(v, &s) != nil {
		return nil
	}
	return s
}

// compactPeer decodes one 6- or 18-byte compact peer; false for an address nobody can
// dial.
func compactPeer(b []byte, size int) (netip.AddrPort, bool) {
	var a netip.Addr
	if size == 6 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16([16]byte(b[:16]))
		if a.Is4In6() {
			return netip.AddrPort{}, false // a v4 peer belongs in the v4 list
		}
	}
	port := uint16(b[size-2])<<8 | uint16(b[size-1])
	if port == 0 || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}
