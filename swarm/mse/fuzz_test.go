package mse

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// FuzzAcceptFromStart feeds arbitrary bytes to the receiver as the whole stream: it must
// fail cleanly, never panic or read without bound.
func FuzzAcceptFromStart(f *testing.F) {
	f.Add([]byte("\x13BitTorrent protocol"))
	f.Add(bytes.Repeat([]byte{0xff}, keyLen+600))
	f.Add(append(bytes.Repeat([]byte{0}, keyLen-1), 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go io.Copy(io.Discard, a)
		go func() {
			a.Write(data)
			a.Close()
		}()
		Accept(b, lookup(testSKEY), RC4|Plaintext)
	})
}

// FuzzAcceptAfterDH runs a valid key exchange and req1/req2 and then feeds arbitrary bytes,
// encrypted with the initiator's key, so they are parsed as VC, crypto_provide, PadC and
// the initial payload.
func FuzzAcceptAfterDH(f *testing.F) {
	valid := make([]byte, 16, 16+5)
	binary.BigEndian.PutUint32(valid[8:], uint32(RC4|Plaintext))
	binary.BigEndian.PutUint16(valid[14:], 5)
	f.Add(append(valid, "hello"...))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	padded := make([]byte, 14, 14+512+2)
	binary.BigEndian.PutUint32(padded[8:], uint32(RC4))
	binary.BigEndian.PutUint16(padded[12:], 512)
	f.Add(append(padded, make([]byte, 514)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() {
			defer a.Close()
			priv, pub, _ := keyPair()
			if _, err := a.Write(pub[:]); err != nil {
				return
			}
			var yb [keyLen]byte
			if _, err := io.ReadFull(a, yb[:]); err != nil {
				return
			}
			go io.Copy(io.Discard, a)
			s, err := sharedSecret(priv, yb[:])
			if err != nil {
				return
			}
			enc := newCipher("keyA", s, testSKEY)
			req1, req2, req3 := hash([]byte("req1"), s[:]), Req2(testSKEY), hash([]byte("req3"), s[:])
			msg := append([]byte{}, req1[:]...)
			for i := range req2 {
				msg = append(msg, req2[i]^req3[i])
			}
			body := bytes.Clone(data)
			enc.XORKeyStream(body, body)
			a.Write(append(msg, body...))
		}()
		c, m, _, ia, err := Accept(b, lookup(testSKEY), RC4|Plaintext)
		if err != nil {
			return
		}
		if m != RC4 && m != Plaintext || c == nil || len(ia) > 0xffff {
			t.Fatalf("accepted with method %v, ia %d bytes", m, len(ia))
		}
	})
}
