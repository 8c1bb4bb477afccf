package dht

import (
	"crypto/rand"
	"hash/crc32"
	"net/netip"
)

// BEP 42: a node ID is tied to the node's external IP. The first 21 bits of the ID come from
// crc32c of the masked IP with 3 random bits r mixed into its top byte, and the last byte
// of the ID carries r.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	mask4 = []byte{0x03, 0x0f, 0x3f, 0xff}
	mask6 = []byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff}
)

// secureCRC returns the crc32c BEP 42 derives an ID prefix from, for ip and r (0..7).
func secureCRC(ip netip.Addr, r byte) uint32 {
	ip = ip.Unmap()
	var b []byte
	var mask []byte
	if ip.Is4() {
		a := ip.As4()
		b, mask = a[:], mask4
	} else {
		a := ip.As16()
		b, mask = a[:8], mask6
	}
	buf := make([]byte, len(mask))
	for i := range mask {
		buf[i] = b[i] & mask[i]
	}
	buf[0] |= (r & 7) << 5
	return crc32.Checksum(buf, castagnoli)
}

// secureID makes a random BEP 42 ID for external address ip.
func secureID(ip netip.Addr) nodeID {
	id := randomID()
	var rb [1]byte
	rand.Read(rb[:])
	crc := secureCRC(ip, rb[0]&7)
	id[0] = byte(crc >> 24)
	id[1] = byte(crc >> 16)
	id[2] = byte(crc>>8)&0xf8 | id[2]&7
	id[19] = rb[0]
	return id
}

// exemptIP says whether BEP 42 leaves ip out of the check: local and private networks.
func exemptIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// isSecureID says whether id is a valid BEP 42 ID for ip, or ip is exempt.
func isSecureID(id nodeID, ip netip.Addr) bool {
	if exemptIP(ip) {
		return true
	}
	crc := secureCRC(ip, id[19]&7)
	return id[0] == byte(crc>>24) && id[1] == byte(crc>>16) && id[2]&0xf8 == byte(crc>>8)&0xf8
}
