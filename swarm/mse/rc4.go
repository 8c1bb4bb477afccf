package mse

// rc4Cipher is RC4 (the stream cipher MSE uses), written here from the algorithm's
// definition because crypto/rc4 is plain Go at about 600 MB/s on our machines, and on a
// fast download the receiver's decryption was most of what encryption cost. The amd64
// version (rc4_amd64.s) runs about twice as fast; other machines, and builds with the
// purego tag, use xorGeneric, about 1.4 times as fast (BenchmarkRC4 compares them).
//
// The state is the permutation s of the 256 byte values and the two indices i and j. Each
// keystream byte advances i by one, adds s[i] to j, swaps s[i] and s[j], and is
// s[s[i]+s[j]] (all arithmetic mod 256).
//
// One cipher serves one direction of one connection: it is not safe for concurrent use.
type rc4Cipher struct {
	s    [256]uint8
	i, j uint8
}

// newRC4 runs the key schedule for key, which must be 1 to 256 bytes long.
func newRC4(key []byte) *rc4Cipher {
	if len(key) == 0 || len(key) > 256 {
		panic("mse: RC4 key of a bad length")
	}
	c := new(rc4Cipher)
	for k := range c.s {
		c.s[k] = uint8(k)
	}
	var j uint8
	for k := range c.s {
		j += c.s[k] + key[k%len(key)]
		c.s[k], c.s[j] = c.s[j], c.s[k]
	}
	return c
}

// rc4Chunk bounds the bytes one call of the assembly loop handles: the runtime cannot
// preempt a goroutine inside assembly, so a huge buffer is done in steps of about 30 µs.
const rc4Chunk = 32 << 10

// XORKeyStream sets dst[k] = src[k] xor the next keystream byte, for k < len(src). dst
// must be at least as long as src, and either the very same memory (decrypting in place)
// or not overlap it at all.
func (c *rc4Cipher) XORKeyStream(dst, src []byte) {
	if len(src) == 0 {
		return
	}
	dst = dst[:len(src)] // panics now, not halfway, if dst is short
	for len(src) > rc4Chunk {
		c.xor(dst[:rc4Chunk], src[:rc4Chunk])
		dst, src = dst[rc4Chunk:], src[rc4Chunk:]
	}
	c.xor(dst, src)
}

// xorGeneric is XORKeyStream in Go; len(dst) == len(src).
//
// The textbook loop loads s[i] for the next byte only after storing this byte's swap, so
// the processor must first know where that store goes (it may be the very byte) and the
// next byte waits on this one's loads. Here the next s[i] is loaded before the swap is
// stored, and reloaded in the rare case (j landing on the next i, 1 in 256) that the swap
// changed it; measured, that alone makes the loop about 1.4 times as fast.
func (c *rc4Cipher) xorGeneric(dst, src []byte) {
	s := &c.s
	i, j := c.i, c.j
	dst = dst[:len(src)]
	i++
	x := s[i]
	for k, v := range src {
		j += x
		y := s[j]
		next := i + 1
		nx := s[next]
		s[i], s[j] = y, x
		if j == next {
			nx = s[next]
		}
		dst[k] = v ^ s[x+y]
		i, x = next, nx
	}
	c.i, c.j = i-1, j
}
