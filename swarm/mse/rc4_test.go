package mse

import (
	"bytes"
	"crypto/rc4"
	mrand "math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// xorFuncs are the implementations to check: the one XORKeyStream uses on this machine
// (assembly on amd64) and the Go one, which other machines use.
var xorFuncs = []struct {
	name string
	xor  func(c *rc4Cipher, dst, src []byte)
}{
	{"XORKeyStream", (*rc4Cipher).XORKeyStream},
	{"xorGeneric", func(c *rc4Cipher, dst, src []byte) {
		if len(src) > 0 {
			c.xorGeneric(dst, src)
		}
	}},
}

// checkAgainstStd encrypts src, cut into the chunks of the given lengths, with our RC4
// (in place when inPlace) and compares it with crypto/rc4's single pass.
func checkAgainstStd(t *testing.T, xor func(*rc4Cipher, []byte, []byte), key, src []byte, chunks []int, inPlace bool) {
	t.Helper()
	ref, err := rc4.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(src))
	ref.XORKeyStream(want, src)

	c := newRC4(key)
	got := make([]byte, len(src))
	if inPlace {
		copy(got, src)
	}
	off := 0
	for _, n := range chunks {
		in := src[off : off+n]
		if inPlace {
			in = got[off : off+n]
		}
		xor(c, got[off:off+n], in)
		off += n
	}
	if off != len(src) {
		t.Fatalf("chunks cover %d of %d bytes", off, len(src))
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("key %x, %d bytes in %d chunks (in place %v): first difference at byte %d", key, len(src), len(chunks), inPlace, i)
	}
}

// TestRC4MatchesStd: random keys of every length class, random lengths, random chunking
// (zero-length calls, single bytes, odd and even runs, runs over rc4Chunk), in place and
// into another buffer, against crypto/rc4.
func TestRC4MatchesStd(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, f := range xorFuncs {
		t.Run(f.name, func(t *testing.T) {
			for trial := range 300 {
				key := make([]byte, 1+rng.IntN(256))
				for k := range key {
					key[k] = byte(rng.Uint32())
				}
				n := rng.IntN(2000)
				if trial%50 == 0 {
					n = rc4Chunk*2 + rng.IntN(5000) // crosses the chunking inside XORKeyStream
				}
				src := make([]byte, n)
				for k := range src {
					src[k] = byte(rng.Uint32())
				}
				var chunks []int
				for left := n; left > 0 || rng.IntN(4) == 0; {
					c := min(left, rng.IntN(3)*rng.IntN(700)+rng.IntN(3))
					chunks = append(chunks, c)
					left -= c
					if left == 0 && rng.IntN(2) == 0 {
						break
					}
				}
				checkAgainstStd(t, f.xor, key, src, chunks, trial%2 == 0)
			}
		})
	}
}

// TestRC4KnownAnswer pins the keystream for the 40-bit key 0102030405 to values from
// outside Go: offsets 0 and 16 as RFC 6229 lists them, offset 4096 as OpenSSL's rc4-40
// computes it (`openssl enc -rc4-40 -K 0102030405` of zeros).
func TestRC4KnownAnswer(t *testing.T) {
	key := []byte{0x01, 0x02, 0x03, 0x04, 0x05}
	want := map[int][]byte{ // offset: keystream bytes
		0:    {0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27, 0xcc, 0xc3, 0x52, 0x4a, 0x0a, 0x11, 0x18, 0xa8},
		16:   {0x69, 0x82, 0x94, 0x4f, 0x18, 0xfc, 0x82, 0xd5, 0x89, 0xc4, 0x03, 0xa4, 0x7a, 0x0d, 0x09, 0x19},
		4096: {0xff, 0x25, 0xb5, 0x89, 0x95, 0x99, 0x67, 0x07, 0xe5, 0x1f, 0xbd, 0xf0, 0x8b, 0x34, 0xd8, 0x75},
	}
	for _, f := range xorFuncs {
		ks := make([]byte, 4096+16)
		f.xor(newRC4(key), ks, ks)
		for off, w := range want {
			if got := ks[off : off+16]; !bytes.Equal(got, w) {
				t.Errorf("%s: keystream at %d = %x, want %x", f.name, off, got, w)
			}
		}
	}
}

// FuzzRC4 compares our RC4 with crypto/rc4 for any key, data and cut point.
func FuzzRC4(f *testing.F) {
	f.Add([]byte("key"), []byte("plaintext"), uint16(3))
	f.Add(bytes.Repeat([]byte{0xff}, 256), make([]byte, 1000), uint16(999))
	f.Add([]byte{0}, []byte{1}, uint16(0))
	f.Fuzz(func(t *testing.T, key, data []byte, cut uint16) {
		if len(key) == 0 || len(key) > 256 {
			return
		}
		c := int(cut) % (len(data) + 1)
		for _, fn := range xorFuncs {
			checkAgainstStd(t, fn.xor, key, data, []int{c, len(data) - c}, cut%2 == 0)
		}
	})
}

// BenchmarkRC4 reports MB/s of our RC4 and crypto/rc4 on 16 KiB buffers, decrypting in
// place as Conn.Read does. Beside the usual MB/s (bytes per second of wall time) it
// reports cpu-MB/s, bytes per second of the process's CPU time, which the other loads of a
// shared machine disturb much less.
func BenchmarkRC4(b *testing.B) {
	key := []byte("0123456789abcdefghij")
	buf := make([]byte, 16<<10)
	run := func(b *testing.B, xor func(dst, src []byte)) {
		b.SetBytes(int64(len(buf)))
		cpu0 := processCPU(b)
		for b.Loop() {
			xor(buf, buf)
		}
		if cpu := processCPU(b) - cpu0; cpu > 0 {
			b.ReportMetric(float64(b.N)*float64(len(buf))/cpu.Seconds()/1e6, "cpu-MB/s")
		}
	}
	b.Run("ours", func(b *testing.B) { run(b, newRC4(key).XORKeyStream) })
	b.Run("generic", func(b *testing.B) { run(b, newRC4(key).xorGeneric) })
	b.Run("crypto-rc4", func(b *testing.B) {
		c, _ := rc4.NewCipher(key)
		run(b, c.XORKeyStream)
	})
}

// processCPU is the user+system CPU time the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
