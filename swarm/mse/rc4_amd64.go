//go:build !purego

package mse

// xorAsm is xorGeneric in assembly: n > 0 bytes from src to dst.
//
//go:noescape
func xorAsm(c *rc4Cipher, dst, src *byte, n int)

func (c *rc4Cipher) xor(dst, src []byte) { xorAsm(c, &dst[0], &src[0], len(src)) }
