package dht

import (
	"bytes"
	"crypto/rand"
	"math/bits"
)

// nodeID is a 160-bit DHT key: a node's ID or an infohash.
type nodeID [20]byte

func randomID() nodeID {
	var id nodeID
	rand.Read(id[:])
	return id
}

// commonPrefix is the number of leading bits a and b share (160 when equal).
func commonPrefix(a, b nodeID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// closer says whether a is closer to target than b in XOR distance.
func closer(target, a, b nodeID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// cmpDistance orders a and b by their XOR distance to target, for slices.SortFunc.
func cmpDistance(target, a, b nodeID) int {
	var da, db nodeID
	for i := range target {
		da[i], db[i] = a[i]^target[i], b[i]^target[i]
	}
	return bytes.Compare(da[:], db[:])
}

// randomIDWithPrefix returns a random ID sharing exactly the first n bits of self and differing
// at bit n (any ID sharing at least n bits when n is 160 or flip is false).
func randomIDWithPrefix(self nodeID, n int, flip bool) nodeID {
	id := randomID()
	for i := 0; i < n && i < 160; i++ {
		mask := byte(0x80) >> (i % 8)
		id[i/8] = id[i/8]&^mask | self[i/8]&mask
	}
	if flip && n < 160 {
		mask := byte(0x80) >> (n % 8)
		id[n/8] = id[n/8]&^mask | ^self[n/8]&mask
	}
	return id
}
