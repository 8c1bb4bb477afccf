//go:build !purego

#include "go_asm.h"
#include "textflag.h"

// The loops keep each index in a 64-bit register whose upper bits stay zero and update it
// with byte-sized instructions, so it wraps mod 256 for free and addresses s directly. They
// follow xorGeneric (see its comment for why the next s[i] is loaded before the swap is
// stored), unrolled so that the registers for "this i, this s[i]" and "next i, next s[i]"
// trade roles instead of being copied:
//
//	DI   &c.s
//	SI   src + n, DX dst + n, CX the offset from -n up to 0
//	BX   j
//	AX   i,    R8  s[i]      (even steps: this byte; odd steps: the next)
//	R12  i+1,  R10 s[i+1]    (the other way round)
//	R9   s[j] before the swap
//	R11  the keystream byte
//	R13  (xorAsm8) eight keystream bytes, gathered to be applied with one load and store

// STEP makes one keystream byte in R11: I and X are this i and s[i], NI and NX receive the
// next i and s[i]; FIX is the label that patches NX when the swap wrote s[NI] (it jumps
// back to CONT). X is clobbered.
#define STEP(I, X, NI, NX, FIX, CONT) \
	ADDB X, BX \
	MOVBLZX (DI)(BX*1), R9 \
	MOVL I, NI \
	INCB NI \
	MOVBLZX (DI)(NI*1), NX \
	MOVB R9, (DI)(I*1) \
	MOVB X, (DI)(BX*1) \
	CMPB BX, NI \
	JEQ FIX \
CONT: \
	ADDB R9, X \
	MOVBLZX (DI)(X*1), R11

// GATHER puts the keystream byte of step K (1 to 7) of eight into R13.
#define GATHER(K) \
	SHLQ $(8*K), R11 \
	ORQ R11, R13

// func xorAsm8(c *rc4Cipher, dst, src *byte, n int)
//
// n > 0 bytes, a multiple of 8, eight at a time: one 8-byte load and store of the data
// instead of eight of each, which makes it about a third faster than xorAsm.
TEXT ·xorAsm8(SB), NOSPLIT, $0-32
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

loop8:
	STEP(AX, R8, R12, R10, fix80, cont80)
	MOVQ R11, R13
	STEP(R12, R10, AX, R8, fix81, cont81)
	GATHER(1)
	STEP(AX, R8, R12, R10, fix82, cont82)
	GATHER(2)
	STEP(R12, R10, AX, R8, fix83, cont83)
	GATHER(3)
	STEP(AX, R8, R12, R10, fix84, cont84)
	GATHER(4)
	STEP(R12, R10, AX, R8, fix85, cont85)
	GATHER(5)
	STEP(AX, R8, R12, R10, fix86, cont86)
	GATHER(6)
	STEP(R12, R10, AX, R8, fix87, cont87)
	GATHER(7)
	XORQ (SI)(CX*1), R13
	MOVQ R13, (DX)(CX*1)
	ADDQ $8, CX
	JNE loop8

	// AX is the i of the byte that would come next; the state keeps the last one used.
	DECB AX
	MOVB AX, rc4Cipher_i(DI)
	MOVB BX, rc4Cipher_j(DI)
	RET

	// The swap wrote x to s[next i].
fix80:
	MOVL R8, R10
	JMP cont80
fix81:
	MOVL R10, R8
	JMP cont81
fix82:
	MOVL R8, R10
	JMP cont82
fix83:
	MOVL R10, R8
	JMP cont83
fix84:
	MOVL R8, R10
	JMP cont84
fix85:
	MOVL R10, R8
	JMP cont85
fix86:
	MOVL R8, R10
	JMP cont86
fix87:
	MOVL R10, R8
	JMP cont87

// func xorAsm(c *rc4Cipher, dst, src *byte, n int)
//
// n > 0 bytes, one at a time (xorAsm8's tail).
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
	STEP(AX, R8, R12, R10, fix1, cont1)
	XORB (SI)(CX*1), R11
	MOVB R11, (DX)(CX*1)
	INCQ CX
	JEQ end1
	STEP(R12, R10, AX, R8, fix2, cont2)
	XORB (SI)(CX*1), R11
	MOVB R11, (DX)(CX*1)
	INCQ CX
	JNE loop

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
	MOVL R8, R10
	JMP cont1
fix2:
	MOVL R10, R8
	JMP cont2
