package bitfield

import "testing"

func TestBitfield(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 17} {
		f := New(n)
		if f.Count() != 0 || len(f.Bytes()) != (n+7)/8 {
			t.Fatalf("n=%d: new bitfield count %d bytes %d", n, f.Count(), len(f.Bytes()))
		}
		for i := 0; i < n; i += 2 {
			f.Set(i)
		}
		f.Set(n) // out of range: ignored
		f.Set(-1)
		if want := (n + 1) / 2; f.Count() != want {
			t.Fatalf("n=%d: count %d want %d", n, f.Count(), want)
		}
		g, err := FromBytes(f.Bytes(), n)
		if err != nil {
			t.Fatalf("n=%d: round trip: %v", n, err)
		}
		for i := -1; i <= n; i++ {
			if g.Has(i) != (i >= 0 && i < n && i%2 == 0) {
				t.Fatalf("n=%d: Has(%d) = %v", n, i, g.Has(i))
			}
		}
		full := Full(n)
		if !full.All() || full.Count() != n {
			t.Fatalf("n=%d: full count %d", n, full.Count())
		}
		if _, err := FromBytes(full.Bytes(), n); err != nil {
			t.Fatalf("n=%d: full round trip: %v", n, err)
		}
	}
	if f := New(1); true {
		f.Set(0)
		if f.Bytes()[0] != 0x80 {
			t.Fatalf("piece 0 is not the high bit: %08b", f.Bytes()[0])
		}
	}
	if _, err := FromBytes([]byte{0xff}, 7); err == nil {
		t.Fatal("spare bit set: no error")
	}
	if _, err := FromBytes([]byte{0, 0}, 7); err == nil {
		t.Fatal("wrong length: no error")
	}
}
