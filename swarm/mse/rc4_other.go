//go:build !amd64 || purego

package mse

func (c *rc4Cipher) xor(dst, src []byte) { c.xorGeneric(dst, src) }
