// Package mse implements BitTorrent's Message Stream Encryption (MSE, also called protocol
// encryption, PE): a Diffie-Hellman handshake keyed by a secret both peers know (the
// torrent's info-hash, "SKEY"), after which the connection carries RC4-encrypted bytes or
// goes on in plaintext, as the two sides negotiated.
//
// It owns the handshake and the cipher state of one connection, nothing else: swarm calls
// Initiate on the connections it dials and Sniff, then Accept, on those it accepts, before
// the BitTorrent handshake. It imports no other torrentfs package. RC4 is its own
// (rc4.go, with assembly for amd64), twice as fast as crypto/rc4, since decryption is most
// of what encryption costs a downloader.
//
// The exchange, A the initiator and B the receiver (HASH is SHA-1, S the shared secret):
//
//	A->B: Ya, PadA
//	B->A: Yb, PadB
//	A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//	      ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//	B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload stream
//
// Every length a peer sends is bounded (paddings by 512 bytes, the initial payload by its
// 16-bit length), and the two searches for a synchronisation point scan at most the
// largest padding, so a hostile peer costs a few kilobytes; time is bounded by the
// caller's deadline on the connection.
package mse

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
)

// Method is a crypto_provide / crypto_select bit set: how the payload stream is carried.
type Method uint32

const (
	// Plaintext: the payload stream after the handshake is not encrypted.
	Plaintext Method = 0x01
	// RC4: the payload stream is RC4-encrypted with the keys of the handshake.
	RC4 Method = 0x02
)

func (m Method) String() string {
	switch m {
	case Plaintext:
		return "plaintext"
	case RC4:
		return "rc4"
	case Plaintext | RC4:
		return "rc4|plaintext"
	case 0:
		return "none"
	}
	return fmt.Sprintf("method(%#x)", uint32(m))
}

const (
	keyLen = 96  // a public key or shared secret: 768 bits
	maxPad = 512 // PadA, PadB, PadC, PadD
	// bufSize holds the longest window a synchronisation search peeks at (PadA and req1,
	// 532 bytes) with room to spare.
	bufSize = 1024
)

// Errors a caller may want to tell apart; others wrap I/O errors.
var (
	// ErrUnknownSKEY: the initiator asked for a secret (torrent) we do not have.
	ErrUnknownSKEY = errors.New("mse: unknown torrent")
	// ErrNoMethod: the two sides share no method (e.g. one requires RC4, the other offers
	// plaintext only).
	ErrNoMethod = errors.New("mse: no common crypto method")
	// ErrNoSync: the synchronisation point did not come within the longest padding: not
	// an MSE peer, or one that holds another secret.
	ErrNoSync = errors.New("mse: no synchronisation within the padding limit")
)

// The 768-bit safe prime of the spec (the Oakley group 1 prime); the generator is 2.
var (
	prime, _     = new(big.Int).SetString("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)
	primeMinus1  = new(big.Int).Sub(prime, big.NewInt(1))
	generator    = big.NewInt(2)
	one          = big.NewInt(1)
	verification [8]byte // VC: eight zero bytes
)

// keyPair makes a 160-bit private key and its public key, padded to 96 bytes.
func keyPair() (*big.Int, [keyLen]byte, error) {
	var pub [keyLen]byte
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, pub, fmt.Errorf("mse: private key: %w", err)
	}
	x := new(big.Int).SetBytes(b[:])
	new(big.Int).Exp(generator, x, prime).FillBytes(pub[:])
	return x, pub, nil
}

// sharedSecret is S = peer^priv mod P, padded to 96 bytes. A public key of 0, 1 or P-1 (or
// out of range) would make S guessable: refused.
func sharedSecret(priv *big.Int, peer []byte) ([keyLen]byte, error) {
	var s [keyLen]byte
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(one) <= 0 || y.Cmp(primeMinus1) >= 0 {
		return s, errors.New("mse: degenerate public key")
	}
	new(big.Int).Exp(y, priv, prime).FillBytes(s[:])
	return s, nil
}

func hash(parts ...[]byte) [20]byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [20]byte
	h.Sum(out[:0])
	return out
}

// Req2 is HASH('req2', skey), what the initiator sends (masked) to name its secret: index
// secrets by it to answer Accept's lookup without hashing every secret on every call.
func Req2(skey [20]byte) [20]byte { return hash([]byte("req2"), skey[:]) }

// newCipher is RC4 keyed with HASH(name, S, SKEY), the first 1024 bytes of its keystream
// discarded as the spec says.
func newCipher(name string, s [keyLen]byte, skey [20]byte) *rc4Cipher {
	k := hash([]byte(name), s[:], skey[:])
	c := newRC4(k[:])
	var discard [1024]byte
	c.XORKeyStream(discard[:], discard[:])
	return c
}

// padding is 0 to 512 random bytes.
func padding() []byte {
	b := make([]byte, mrand.IntN(maxPad+1))
	rand.Read(b)
	return b
}

// choose picks what the receiver selects from what the initiator provides: plaintext over
// RC4 when both are allowed. An initiator that offers plaintext has said it will do without
// RC4, and RC4 would cost both sides a pass over every byte (about a second of CPU per GiB
// each); libtorrent and aria2 choose so by default too. A receiver that wants RC4 allows
// only RC4.
func choose(provide, allow Method) Method {
	both := provide & allow
	switch {
	case both&Plaintext != 0:
		return Plaintext
	case both&RC4 != 0:
		return RC4
	}
	return 0
}

// syncTo consumes r up to and including the first occurrence of pat, which must end within
// the first limit bytes; r's buffer must hold limit bytes.
func syncTo(r *bufio.Reader, pat []byte, limit int) error {
	for n := len(pat); n <= limit; n++ {
		p, err := r.Peek(n)
		if err != nil {
			return err
		}
		if bytes.Equal(p[n-len(pat):], pat) {
			_, err := r.Discard(n)
			return err
		}
	}
	return ErrNoSync
}

// skipPad reads and decrypts n padding bytes (n <= maxPad): the keystream must advance
// over them.
func skipPad(r io.Reader, dec *rc4Cipher, n int) error {
	var buf [maxPad]byte
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return err
	}
	dec.XORKeyStream(buf[:n], buf[:n])
	return nil
}

// Initiate runs the initiator's side of the handshake on conn for the secret skey,
// offering the methods in provide, and sends ia (at most 65535 bytes; typically the
// BitTorrent handshake) encrypted inside the handshake. It returns the connection to use
// from then on, which encrypts and decrypts when RC4 was selected, and the selected method.
// The caller bounds the time with conn's deadline; on error the caller closes conn.
func Initiate(conn net.Conn, skey [20]byte, provide Method, ia []byte) (net.Conn, Method, error) {
	provide &= Plaintext | RC4
	if provide == 0 {
		return nil, 0, errors.New("mse: initiate: no method to provide")
	}
	if len(ia) > 0xffff {
		return nil, 0, errors.New("mse: initiate: initial payload over 65535 bytes")
	}
	priv, pub, err := keyPair()
	if err != nil {
		return nil, 0, err
	}
	if _, err := conn.Write(append(pub[:], padding()...)); err != nil {
		return nil, 0, fmt.Errorf("mse: send public key: %w", err)
	}
	br := bufio.NewReaderSize(conn, bufSize)
	var yb [keyLen]byte
	if _, err := io.ReadFull(br, yb[:]); err != nil {
		return nil, 0, fmt.Errorf("mse: read public key: %w", err)
	}
	s, err := sharedSecret(priv, yb[:])
	if err != nil {
		return nil, 0, err
	}
	enc := newCipher("keyA", s, skey)
	dec := newCipher("keyB", s, skey)

	req1 := hash([]byte("req1"), s[:])
	req2 := Req2(skey)
	req3 := hash([]byte("req3"), s[:])
	msg := make([]byte, 0, 40+8+4+2+2+len(ia))
	msg = append(msg, req1[:]...)
	for i := range req2 {
		msg = append(msg, req2[i]^req3[i])
	}
	start := len(msg)
	msg = append(msg, verification[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(provide))
	msg = binary.BigEndian.AppendUint16(msg, 0) // PadC: empty, as every client sends it
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(ia)))
	msg = append(msg, ia...)
	enc.XORKeyStream(msg[start:], msg[start:])
	if _, err := conn.Write(msg); err != nil {
		return nil, 0, fmt.Errorf("mse: send request: %w", err)
	}

	// B's answer starts with ENCRYPT(VC) somewhere within PadB.
	var vc [8]byte
	dec.XORKeyStream(vc[:], verification[:])
	if err := syncTo(br, vc[:], maxPad+len(vc)); err != nil {
		return nil, 0, fmt.Errorf("mse: find the answer: %w", err)
	}
	var hdr [6]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("mse: read the answer: %w", err)
	}
	dec.XORKeyStream(hdr[:], hdr[:])
	sel := Method(binary.BigEndian.Uint32(hdr[:4]))
	if sel != Plaintext && sel != RC4 || sel&provide == 0 {
		return nil, 0, fmt.Errorf("mse: peer selected %v, we provided %v", sel, provide)
	}
	padD := int(binary.BigEndian.Uint16(hdr[4:]))
	if padD > maxPad {
		return nil, 0, fmt.Errorf("mse: PadD of %d bytes", padD)
	}
	if err := skipPad(br, dec, padD); err != nil {
		return nil, 0, fmt.Errorf("mse: read PadD: %w", err)
	}
	return newConn(conn, br, sel, enc, dec), sel, nil
}

// Accept runs the receiver's side of the handshake on conn (whose first bytes are the
// initiator's public key: see Sniff). skeys finds the secret whose Req2 is the given hash
// (for swarm: the torrent, among all of the process's, whose info-hash it is) and reports
// false when there is none. allow is the set of methods we accept; plaintext is selected
// when both sides allow it, RC4 when only RC4 is common to both (see choose). Accept returns the connection to use from then on, the selected
// method, the secret, and the initial payload the initiator sent inside the handshake
// (often the BitTorrent handshake: see Prepend). The caller bounds the time with conn's
// deadline; on error the caller closes conn.
func Accept(conn net.Conn, skeys func(req2 [20]byte) ([20]byte, bool), allow Method) (net.Conn, Method, [20]byte, []byte, error) {
	var skey [20]byte
	allow &= Plaintext | RC4
	if allow == 0 {
		return nil, 0, skey, nil, errors.New("mse: accept: no method allowed")
	}
	br := bufio.NewReaderSize(conn, bufSize)
	var ya [keyLen]byte
	if _, err := io.ReadFull(br, ya[:]); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read public key: %w", err)
	}
	priv, pub, err := keyPair()
	if err != nil {
		return nil, 0, skey, nil, err
	}
	s, err := sharedSecret(priv, ya[:])
	if err != nil {
		return nil, 0, skey, nil, err
	}
	if _, err := conn.Write(append(pub[:], padding()...)); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: send public key: %w", err)
	}

	// A's request starts with HASH('req1', S) somewhere within PadA.
	req1 := hash([]byte("req1"), s[:])
	if err := syncTo(br, req1[:], maxPad+len(req1)); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: find the request: %w", err)
	}
	var masked [20]byte
	if _, err := io.ReadFull(br, masked[:]); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read the request: %w", err)
	}
	req3 := hash([]byte("req3"), s[:])
	for i := range masked {
		masked[i] ^= req3[i]
	}
	skey, ok := skeys(masked)
	if !ok {
		return nil, 0, skey, nil, ErrUnknownSKEY
	}
	dec := newCipher("keyA", s, skey)
	enc := newCipher("keyB", s, skey)

	var hdr [14]byte // VC, crypto_provide, len(PadC)
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read the request: %w", err)
	}
	dec.XORKeyStream(hdr[:], hdr[:])
	if !bytes.Equal(hdr[:8], verification[:]) {
		return nil, 0, skey, nil, errors.New("mse: bad verification constant")
	}
	provide := Method(binary.BigEndian.Uint32(hdr[8:12]))
	padC := int(binary.BigEndian.Uint16(hdr[12:]))
	if padC > maxPad {
		return nil, 0, skey, nil, fmt.Errorf("mse: PadC of %d bytes", padC)
	}
	if err := skipPad(br, dec, padC); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read PadC: %w", err)
	}
	var l [2]byte
	if _, err := io.ReadFull(br, l[:]); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read the request: %w", err)
	}
	dec.XORKeyStream(l[:], l[:])
	ia := make([]byte, binary.BigEndian.Uint16(l[:])) // at most 64 KiB
	if _, err := io.ReadFull(br, ia); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: read the initial payload: %w", err)
	}
	dec.XORKeyStream(ia, ia)

	sel := choose(provide, allow)
	if sel == 0 {
		return nil, 0, skey, nil, fmt.Errorf("%w: peer provides %v, we allow %v", ErrNoMethod, provide, allow)
	}
	reply := make([]byte, 0, 14)
	reply = append(reply, verification[:]...)
	reply = binary.BigEndian.AppendUint32(reply, uint32(sel))
	reply = binary.BigEndian.AppendUint16(reply, 0) // PadD: empty
	enc.XORKeyStream(reply, reply)
	if _, err := conn.Write(reply); err != nil {
		return nil, 0, skey, nil, fmt.Errorf("mse: send the answer: %w", err)
	}
	return newConn(conn, br, sel, enc, dec), sel, skey, ia, nil
}
