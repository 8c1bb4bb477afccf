//go:build !purego

#include "go_asm.h"
#include "textflag.h"

// func xorAsm(c *rc4Cipher, dst, src *byte, n int)
//
// The algorithm of xorGeneric (see its comment for why the next s[i] is loaded before the
// swap is stored), with each index kept in a 64-bit register whose upper bits stay zero and
// updated by byte-sized instructions, so it wraps mod 256 for free and addresses s
// directly. The loop is unrolled twice so that the registers for "this i, this s[i]" and
// "next i, next s[i]" trade roles instead of being copied:
//
//	DI   &c.s
//	SI   src + n, DX dst + n, CX the offset from -n up to 0
//	BX   j
//	AX   i,    R8  s[i]      (first half: this byte; second half: the next)
//	R12  i+1,  R10 s[i+1]    (the other way round)
//	R9   s[j] before the swap
//	R11  the keystream byte, then the output byte
TEXT ·xorAsm(SB), NOSPLIT, $0-32
	MOVQ c+0(FP), DI
	MOVQ dst+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	ADDQ CX, SI
	ADDQ CX, DX
	NEGQ CX
	MOVBLZX rc4Cipher_i(DI), AX
	MOVBLZX rc4Cipher_j(DI), BX
	INCB AX
	MOVBLZX (DI)(AX*1), R8

loop:
	ADDB R8, BX                // j += s[i]
	MOVBLZX (DI)(BX*1), R9     // y = s[j]
	MOVL AX, R12
	INCB R12                   // next i
	MOVBLZX (DI)(R12*1), R10   // its s[], loaded before the swap below
	MOVB R9, (DI)(AX*1)        // s[i] = y
	MOVB R8, (DI)(BX*1)        // s[j] = x
	CMPB BX, R12
	JEQ fix1                   // the swap wrote s[next i]
cont1:
	ADDB R9, R8                // x + y
	MOVBLZX (DI)(R8*1), R11    // keystream byte
	XORB (SI)(CX*1), R11
	MOVB R11, (DX)(CX*1)
	INCQ CX
	JEQ end1

	ADDB R10, BX
	MOVBLZX (DI)(BX*1), R9
	MOVL R12, AX
	INCB AX
	MOVBLZX (DI)(AX*1), R8
	MOVB R9, (DI)(R12*1)
	MOVB R10, (DI)(BX*1)
	CMPB BX, AX
	JEQ fix2
cont2:
	ADDB R9, R10
	MOVBLZX (DI)(R10*1), R11
	XORB (SI)(CX*1), R11
	MOVB R11, (DX)(CX*1)
	INCQ CX
	JNE loop

	// AX is the i of the byte that would come next; the state keeps the last one used.
	DECB AX
	MOVB AX, rc4Cipher_i(DI)
	MOVB BX, rc4Cipher_j(DI)
	RET

end1:
	DECB R12
	MOVB R12, rc4Cipher_i(DI)
	MOVB BX, rc4Cipher_j(DI)
	RET

fix1:
	MOVL R8, R10               // s[next i] is now x
	JMP cont1

fix2:
	MOVL R10, R8
	JMP cont2
