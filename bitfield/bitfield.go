// Package bitfield is a fixed-length set of piece indexes with the wire layout of BEP 3's
// bitfield message (piece 0 is the high bit of the first byte). It has no locks: its owner
// guards it.
package bitfield

import (
	"fmt"
	"math/bits"
)

// Bitfield is a set of piece indexes in [0, Len()).
type Bitfield struct {
	b []byte
	n int
}

// New returns an empty bitfield for n pieces.
func New(n int) Bitfield { return Bitfield{b: make([]byte, (n+7)/8), n: n} }

// Full returns a bitfield for n pieces with every piece set.
func Full(n int) Bitfield {
	f := New(n)
	for i := range f.b {
		f.b[i] = 0xff
	}
	f.clearSpare()
	return f
}

// FromBytes parses a wire bitfield for n pieces. It rejects a wrong length and set spare
// bits, as BEP 3 asks.
func FromBytes(b []byte, n int) (Bitfield, error) {
	if len(b) != (n+7)/8 {
		return Bitfield{}, fmt.Errorf("bitfield is %d bytes, want %d for %d pieces", len(b), (n+7)/8, n)
	}
	f := Bitfield{b: append([]byte(nil), b...), n: n}
	if n%8 != 0 && f.b[len(f.b)-1]&(0xff>>(n%8)) != 0 {
		return Bitfield{}, fmt.Errorf("bitfield has spare bits set")
	}
	return f, nil
}

func (f *Bitfield) clearSpare() {
	if f.n%8 != 0 {
		f.b[len(f.b)-1] &^= 0xff >> (f.n % 8)
	}
}

// Len is the number of pieces the bitfield covers.
func (f Bitfield) Len() int { return f.n }

// Has tells whether piece i is set; out-of-range indexes are never set.
func (f Bitfield) Has(i int) bool {
	if i < 0 || i >= f.n {
		return false
	}
	return f.b[i>>3]&(0x80>>(i&7)) != 0
}

// Set adds piece i; out-of-range indexes are ignored.
func (f Bitfield) Set(i int) {
	if i >= 0 && i < f.n {
		f.b[i>>3] |= 0x80 >> (i & 7)
	}
}

// Clear removes piece i.
func (f Bitfield) Clear(i int) {
	if i >= 0 && i < f.n {
		f.b[i>>3] &^= 0x80 >> (i & 7)
	}
}

// Count is the number of pieces set.
func (f Bitfield) Count() int {
	c := 0
	for _, x := range f.b {
		c += bits.OnesCount8(x)
	}
	return c
}

// All tells whether every piece is set.
func (f Bitfield) All() bool { return f.Count() == f.n }

// Bytes returns a copy in wire layout.
func (f Bitfield) Bytes() []byte { return append([]byte(nil), f.b...) }

// Clone returns an independent copy.
func (f Bitfield) Clone() Bitfield { return Bitfield{b: f.Bytes(), n: f.n} }
