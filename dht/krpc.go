package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// KRPC error codes (BEP 5).
const (
	errGeneric  = 201
	errServer   = 202
	errProtocol = 203
	errMethod   = 204
)

// Sizes of the compact encodings (BEP 5, BEP 32).
const (
	compactNode4 = 26
	compactNode6 = 38
	compactPeer4 = 6
	compactPeer6 = 18
)

// msg is one KRPC message, query, response or error, as it travels on the wire.
type msg struct {
	T  string     `bencode:"t"`
	Y  string     `bencode:"y"`
	Q  string     `bencode:"q,omitempty"`
	A  *msgArgs   `bencode:"a,omitempty"`
	R  *msgReply  `bencode:"r,omitempty"`
	E  *krpcError `bencode:"e,omitempty"`
	IP string     `bencode:"ip,omitempty"` // BEP 42: the requester's compact address, in replies
	RO int        `bencode:"ro,omitempty"` // BEP 43: a read-only node, not to be added to tables
}

// msgArgs holds the arguments of every query we know; unused ones stay empty.
type msgArgs struct {
	ID          string   `bencode:"id"`
	Target      string   `bencode:"target,omitempty"`
	InfoHash    string   `bencode:"info_hash,omitempty"`
	Port        int      `bencode:"port,omitempty"`
	ImpliedPort int      `bencode:"implied_port,omitempty"`
	Token       string   `bencode:"token,omitempty"`
	Want        []string `bencode:"want,omitempty"`
}

// msgReply holds the fields of every response we know.
type msgReply struct {
	ID     string   `bencode:"id"`
	Nodes  string   `bencode:"nodes,omitempty"`
	Nodes6 string   `bencode:"nodes6,omitempty"`
	Token  string   `bencode:"token,omitempty"`
	Values []string `bencode:"values,omitempty"`
}

// krpcError is the "e" list of an error message: [code, text].
type krpcError struct {
	Code int
	Msg  string
}

func (e *krpcError) Error() string { return fmt.Sprintf("krpc error %d: %s", e.Code, e.Msg) }

func (e krpcError) MarshalBencode() ([]byte, error) {
	return bencode.Marshal([]any{e.Code, e.Msg})
}

func (e *krpcError) UnmarshalBencode(b []byte) error {
	var v any
	if err := bencode.Unmarshal(b, &v); err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok || len(l) < 2 {
		return errors.New("krpc error: want [code, message]")
	}
	code, ok := l[0].(int64)
	if !ok {
		return errors.New("krpc error: code is not an integer")
	}
	text, ok := l[1].(string)
	if !ok {
		return errors.New("krpc error: message is not a string")
	}
	e.Code, e.Msg = int(code), text
	return nil
}

// maxTIDLen bounds the transaction IDs we echo back; ours are 2 bytes.
const maxTIDLen = 32

var errMalformed = errors.New("krpc: malformed message")

// decodeMsg parses one datagram. It never panics: a decoder panic on hostile input is turned
// into an error. It checks the envelope only; the handlers check the arguments.
func decodeMsg(b []byte) (m msg, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = msg{}, fmt.Errorf("krpc: decode: %v", r)
		}
	}()
	if err := bencode.Unmarshal(b, &m); err != nil {
		return msg{}, fmt.Errorf("krpc: decode: %w", err)
	}
	if m.T == "" || len(m.T) > maxTIDLen {
		return msg{}, fmt.Errorf("%w: transaction id of %d bytes", errMalformed, len(m.T))
	}
	switch m.Y {
	case "q":
		if m.Q == "" {
			return msg{}, fmt.Errorf("%w: query without method", errMalformed)
		}
	case "r":
		if m.R == nil {
			return msg{}, fmt.Errorf("%w: response without r", errMalformed)
		}
	case "e":
		if m.E == nil {
			return msg{}, fmt.Errorf("%w: error without e", errMalformed)
		}
	default:
		return msg{}, fmt.Errorf("%w: type %q", errMalformed, m.Y)
	}
	return m, nil
}

func encodeMsg(m *msg) ([]byte, error) {
	b, err := bencode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("krpc: encode: %w", err)
	}
	return b, nil
}

// nodeInfo is a node as carried in "nodes" and "nodes6": an ID and an address.
type nodeInfo struct {
	id   nodeID
	addr netip.AddrPort
}

// parseNodes reads up to max compact node infos of one family (v6 chooses 38-byte entries).
// A length that is not a multiple of the entry size is an error.
func parseNodes(s string, v6 bool, max int) ([]nodeInfo, error) {
	size, ipLen := compactNode4, 4
	if v6 {
		size, ipLen = compactNode6, 16
	}
	if len(s)%size != 0 {
		return nil, fmt.Errorf("%w: nodes of %d bytes", errMalformed, len(s))
	}
	n := min(len(s)/size, max)
	out := make([]nodeInfo, 0, n)
	for i := range n {
		e := s[i*size : (i+1)*size]
		var ni nodeInfo
		copy(ni.id[:], e[:20])
		ip, _ := netip.AddrFromSlice([]byte(e[20 : 20+ipLen]))
		ni.addr = netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16([]byte(e[20+ipLen:])))
		out = append(out, ni)
	}
	return out, nil
}

// appendNodes appends the compact form of nodes of the family chosen by v6; others are skipped.
func appendNodes(b []byte, nodes []nodeInfo, v6 bool) []byte {
	for _, n := range nodes {
		if n.addr.Addr().Is4() == v6 {
			continue
		}
		b = append(b, n.id[:]...)
		b = appendCompactAddr(b, n.addr)
	}
	return b
}

// appendCompactAddr appends the 6- or 18-byte compact form of ap.
func appendCompactAddr(b []byte, ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		b = append(b, a[:]...)
	} else {
		a := ip.As16()
		b = append(b, a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// parseCompactAddr reads a 6- or 18-byte compact peer address.
func parseCompactAddr(s string) (netip.AddrPort, error) {
	if len(s) != compactPeer4 && len(s) != compactPeer6 {
		return netip.AddrPort{}, fmt.Errorf("%w: compact address of %d bytes", errMalformed, len(s))
	}
	ip, _ := netip.AddrFromSlice([]byte(s[:len(s)-2]))
	return netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16([]byte(s[len(s)-2:]))), nil
}

// parseValues reads up to max peers from a "values" list, skipping malformed entries.
func parseValues(vals []string, max int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, v := range vals {
		if len(out) >= max {
			break
		}
		ap, err := parseCompactAddr(v)
		if err != nil || ap.Port() == 0 || !usableAddr(ap.Addr()) {
			continue
		}
		out = append(out, ap)
	}
	return out
}

// usableAddr says whether ip may be a node or a peer: not unspecified, multicast or broadcast.
// Private and loopback addresses are fine (local networks and tests).
func usableAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// usableNodeAddr adds a port check to usableAddr.
func usableNodeAddr(ap netip.AddrPort) bool {
	return ap.Port() != 0 && usableAddr(ap.Addr())
}
