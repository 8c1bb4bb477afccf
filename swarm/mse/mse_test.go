package mse

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair is a connected pair of loopback TCP sockets, closed at the end of the test.
func tcpPair(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		got <- c
	}()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted = <-got
	if accepted == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	deadline := time.Now().Add(10 * time.Second)
	dialed.SetDeadline(deadline)
	accepted.SetDeadline(deadline)
	return dialed, accepted
}

var testSKEY = [20]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}

func lookup(keys ...[20]byte) func([20]byte) ([20]byte, bool) {
	return func(req2 [20]byte) ([20]byte, bool) {
		for _, k := range keys {
			if Req2(k) == req2 {
				return k, true
			}
		}
		return [20]byte{}, false
	}
}

type acceptResult struct {
	conn net.Conn
	m    Method
	skey [20]byte
	ia   []byte
	err  error
}

func goAccept(conn net.Conn, skeys func([20]byte) ([20]byte, bool), allow Method) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		var r acceptResult
		r.conn, r.m, r.skey, r.ia, r.err = Accept(conn, skeys, allow)
		if r.err != nil {
			conn.Close() // as a caller does: the initiator sees the drop
		}
		ch <- r
	}()
	return ch
}

func TestHandshakeRoundTrip(t *testing.T) {
	tests := []struct {
		provide, allow Method
		want           Method // 0: no common method
	}{
		{RC4, RC4, RC4},
		{RC4 | Plaintext, RC4 | Plaintext, Plaintext},
		{RC4 | Plaintext, RC4, RC4},
		{RC4, RC4 | Plaintext, RC4},
		{Plaintext, RC4 | Plaintext, Plaintext},
		{RC4 | Plaintext, Plaintext, Plaintext},
		{Plaintext, Plaintext, Plaintext},
		{RC4, Plaintext, 0},
		{Plaintext, RC4, 0},
	}
	for _, tc := range tests {
		t.Run(tc.provide.String()+"/"+tc.allow.String(), func(t *testing.T) {
			a, b := tcpPair(t)
			ia := []byte("\x13BitTorrent protocol and the rest of a handshake")
			res := goAccept(b, lookup([20]byte{9}, testSKEY), tc.allow)
			ca, m, err := Initiate(a, testSKEY, tc.provide, ia)
			r := <-res
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("initiate succeeded with %v", m)
				}
				if !errors.Is(r.err, ErrNoMethod) {
					t.Fatalf("accept: got %v, want ErrNoMethod", r.err)
				}
				return
			}
			if err != nil || r.err != nil {
				t.Fatalf("initiate: %v; accept: %v", err, r.err)
			}
			if m != tc.want || r.m != tc.want {
				t.Fatalf("selected %v / %v, want %v", m, r.m, tc.want)
			}
			if r.skey != testSKEY || !bytes.Equal(r.ia, ia) {
				t.Fatalf("accept got skey %x ia %q", r.skey, r.ia)
			}
			if got := ca.(*Conn).Method(); got != tc.want {
				t.Fatalf("Conn.Method = %v", got)
			}
			exchange(t, ca, r.conn)
			exchange(t, r.conn, ca)
		})
	}
}

// exchange sends 200 KB from w to r, in odd-sized writes, and checks it arrives intact.
func exchange(t *testing.T, w, r net.Conn) {
	t.Helper()
	data := make([]byte, 200<<10)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		for p := data; len(p) > 0; {
			n := min(len(p), 7777)
			if _, err := w.Write(p[:n]); err != nil {
				errc <- err
				return
			}
			p = p[n:]
		}
		errc <- nil
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("payload corrupted")
	}
}

// TestRC4OnTheWire checks that the payload is not sent as is when RC4 is selected, and is
// when plaintext is.
func TestRC4OnTheWire(t *testing.T) {
	for _, m := range []Method{RC4, Plaintext} {
		t.Run(m.String(), func(t *testing.T) {
			a, b := tcpPair(t)
			res := goAccept(b, lookup(testSKEY), m)
			ca, _, err := Initiate(a, testSKEY, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			msg := []byte("a recognisable message")
			if _, err := ca.Write(msg); err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, len(msg))
			if _, err := io.ReadFull(b, raw); err != nil { // under the receiver's Conn
				t.Fatal(err)
			}
			if bytes.Equal(raw, msg) != (m == Plaintext) {
				t.Fatalf("%v: wire bytes %q", m, raw)
			}
		})
	}
}

func TestWrongSKEY(t *testing.T) {
	a, b := tcpPair(t)
	res := goAccept(b, lookup([20]byte{7}), RC4|Plaintext)
	if _, _, err := Initiate(a, testSKEY, RC4, []byte("hi")); err == nil {
		t.Fatal("initiate succeeded against a receiver without our secret")
	}
	if r := <-res; !errors.Is(r.err, ErrUnknownSKEY) {
		t.Fatalf("accept: %v, want ErrUnknownSKEY", r.err)
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
		plain bool
	}{
		{"plaintext", []byte("\x13BitTorrent protocol\x00\x00\x00\x00\x00\x00\x00\x00"), true},
		{"19 then other bytes", append([]byte{19}, bytes.Repeat([]byte{0xAA}, 95)...), false},
		{"mse", bytes.Repeat([]byte{0x42}, 96), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			if _, err := a.Write(tc.first); err != nil {
				t.Fatal(err)
			}
			c, plain, err := Sniff(b)
			if err != nil {
				t.Fatal(err)
			}
			if plain != tc.plain {
				t.Fatalf("plaintext = %v", plain)
			}
			got := make([]byte, len(tc.first))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, tc.first) {
				t.Fatalf("replayed %q, %v", got, err)
			}
		})
	}
}

// TestSniffThenAccept is the accept path of swarm: sniff, handshake, initial payload first.
func TestSniffThenAccept(t *testing.T) {
	a, b := tcpPair(t)
	res := make(chan acceptResult, 1)
	go func() {
		c, plain, err := Sniff(b)
		if err != nil || plain {
			res <- acceptResult{err: errors.New("sniff failed")}
			return
		}
		var r acceptResult
		r.conn, r.m, r.skey, r.ia, r.err = Accept(c, lookup(testSKEY), RC4)
		if r.err == nil {
			r.conn = Prepend(r.conn, r.ia)
		}
		res <- r
	}()
	ca, _, err := Initiate(a, testSKEY, RC4, []byte("HANDSHAKE"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Write([]byte("then messages")); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := make([]byte, len("HANDSHAKEthen messages"))
	if _, err := io.ReadFull(r.conn, got); err != nil || string(got) != "HANDSHAKEthen messages" {
		t.Fatalf("read %q, %v", got, err)
	}
	if r.conn.(*Conn).Method() != RC4 {
		t.Fatal("method lost by Prepend")
	}
}

// countingConn counts the bytes read through it: the bound on what a hostile peer makes us
// buffer.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// flood writes garbage to c until it fails (the other side closed).
func flood(c net.Conn) {
	junk := make([]byte, 16<<10)
	rand.Read(junk)
	for {
		if _, err := c.Write(junk); err != nil {
			return
		}
	}
}

func TestAcceptGarbage(t *testing.T) {
	a, b := tcpPair(t)
	cb := &countingConn{Conn: b}
	go io.Copy(io.Discard, a)
	go flood(a)
	_, _, _, _, err := Accept(cb, lookup(testSKEY), RC4|Plaintext)
	if !errors.Is(err, ErrNoSync) {
		t.Fatalf("got %v, want ErrNoSync", err)
	}
	if n := cb.n.Load(); n > keyLen+bufSize {
		t.Fatalf("read %d bytes of garbage", n)
	}
}

func TestInitiateGarbage(t *testing.T) {
	a, b := tcpPair(t)
	ca := &countingConn{Conn: a}
	go io.Copy(io.Discard, b)
	go flood(b)
	_, _, err := Initiate(ca, testSKEY, RC4, nil)
	if !errors.Is(err, ErrNoSync) {
		t.Fatalf("got %v, want ErrNoSync", err)
	}
	if n := ca.n.Load(); n > keyLen+bufSize {
		t.Fatalf("read %d bytes of garbage", n)
	}
}

// handcraftedInitiator runs the initiator's side by hand up to the encrypted request, so
// tests can send what a correct initiator never would. It returns the cipher for further
// bytes and S.
func handcraftedInitiator(t *testing.T, c net.Conn, skey [20]byte, plain []byte) {
	t.Helper()
	priv, pub, err := keyPair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(pub[:]); err != nil {
		t.Fatal(err)
	}
	var yb [keyLen]byte
	if _, err := io.ReadFull(c, yb[:]); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, c) // PadB and whatever follows
	s, err := sharedSecret(priv, yb[:])
	if err != nil {
		t.Fatal(err)
	}
	enc := newCipher("keyA", s, skey)
	req1, req2, req3 := hash([]byte("req1"), s[:]), Req2(skey), hash([]byte("req3"), s[:])
	msg := append([]byte{}, req1[:]...)
	for i := range req2 {
		msg = append(msg, req2[i]^req3[i])
	}
	body := bytes.Clone(plain)
	enc.XORKeyStream(body, body)
	c.Write(append(msg, body...))
}

func TestAcceptHugePadding(t *testing.T) {
	a, b := tcpPair(t)
	res := goAccept(b, lookup(testSKEY), RC4)
	req := make([]byte, 14)
	binary.BigEndian.PutUint32(req[8:], uint32(RC4))
	binary.BigEndian.PutUint16(req[12:], 60000) // PadC far over 512
	handcraftedInitiator(t, a, testSKEY, req)
	if r := <-res; r.err == nil || !bytes.Contains([]byte(r.err.Error()), []byte("PadC")) {
		t.Fatalf("got %v, want a PadC error", r.err)
	}
}

func TestAcceptBadVC(t *testing.T) {
	a, b := tcpPair(t)
	res := goAccept(b, lookup(testSKEY), RC4)
	req := make([]byte, 16)
	req[0] = 1
	binary.BigEndian.PutUint32(req[8:], uint32(RC4))
	handcraftedInitiator(t, a, testSKEY, req)
	if r := <-res; r.err == nil {
		t.Fatal("accepted a bad verification constant")
	}
}

func TestStallMidHandshake(t *testing.T) {
	t.Run("accept", func(t *testing.T) {
		a, b := tcpPair(t)
		_, pub, _ := keyPair()
		a.Write(pub[:]) // then nothing: no req1
		go io.Copy(io.Discard, a)
		b.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, _, _, err := Accept(b, lookup(testSKEY), RC4)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
	})
	t.Run("initiate", func(t *testing.T) {
		a, b := tcpPair(t)
		go io.Copy(io.Discard, b) // reads our request, never answers
		a.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, err := Initiate(a, testSKEY, RC4, nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
	})
}

func TestDegeneratePublicKey(t *testing.T) {
	a, b := tcpPair(t)
	res := goAccept(b, lookup(testSKEY), RC4)
	var one [keyLen]byte
	one[keyLen-1] = 1
	a.Write(one[:])
	if r := <-res; r.err == nil {
		t.Fatal("accepted the public key 1")
	}
}
