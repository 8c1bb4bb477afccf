package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"slices"
)

// AllowedFastSet computes the BEP 6 allowed-fast set of k pieces that we grant a peer at ip
// (the pieces it may request while choked), in the order the BEP's algorithm yields them.
// k is capped at numPieces.
//
// BEP 6 defines the set for IPv4 only, keyed on the /24 so that one user cannot collect several
// sets from neighbouring addresses. An IPv4-mapped IPv6 address is treated as IPv4. For other
// IPv6 addresses we apply the same idea to the /48 (the whole 16-byte address, low 10 bytes
// zeroed); peers need not agree with us on that, since the set is only what we grant.
func AllowedFastSet(k int, numPieces int, ip netip.Addr, infoHash [20]byte) []uint32 {
	k = min(k, numPieces)
	if k <= 0 || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap()
	var x []byte
	if ip.Is4() {
		a := ip.As4()
		x = append(a[:3:3], 0)
	} else {
		a := ip.As16()
		x = append(a[:6:6], make([]byte, 10)...)
	}
	x = append(x, infoHash[:]...)
	set := make([]uint32, 0, k)
	sz := uint32(numPieces)
	// A linear scan is fastest for the usual k of about 10; a bitmap keeps big k linear.
	var seen []uint64
	if k > 64 {
		seen = make([]uint64, (numPieces+63)/64)
	}
	for len(set) < k {
		h := sha1.Sum(x)
		x = h[:]
		for i := 0; i < 5 && len(set) < k; i++ {
			index := binary.BigEndian.Uint32(h[i*4:]) % sz
			switch {
			case seen != nil:
				if seen[index/64]&(1<<(index%64)) != 0 {
					continue
				}
				seen[index/64] |= 1 << (index % 64)
			case slices.Contains(set, index):
				continue
			}
			set = append(set, index)
		}
	}
	return set
}
