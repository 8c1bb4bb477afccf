//go:build !purego

package mse

// xorAsm8 is xorGeneric in assembly for n > 0 bytes, n a multiple of 8.
//
//go:noescape
func xorAsm8(c *rc4Cipher, dst, src *byte, n int)

// xorAsm is xorGeneric in assembly for any n > 0 bytes.
//
//go:noescape
func xorAsm(c *rc4Cipher, dst, src *byte, n int)

func (c *rc4Cipher) xor(dst, src []byte) {
	n := len(src) &^ 7
	if n > 0 {
		xorAsm8(c, &dst[0], &src[0], n)
	}
	if n < len(src) {
		xorAsm(c, &dst[n], &src[n], len(src)-n)
	}
}
