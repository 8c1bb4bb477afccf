package mse

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
)

// Conn is a connection after an MSE handshake (or after Sniff): reads first return bytes
// already taken from the socket, and when RC4 was selected every byte is decrypted on the
// way in and encrypted on the way out. Deadlines and Close go to the socket. Reads and
// writes may run concurrently with each other.
type Conn struct {
	net.Conn
	method Method

	rmu     sync.Mutex
	pending []byte    // plaintext to return before anything else (Prepend)
	r       io.Reader // raw bytes: what the handshake buffered, then the socket
	dec     *rc4Cipher

	wmu  sync.Mutex
	enc  *rc4Cipher
	wbuf []byte
}

// newConn wraps conn after a handshake; br holds what was read past it.
func newConn(conn net.Conn, br *bufio.Reader, m Method, enc, dec *rc4Cipher) *Conn {
	c := &Conn{Conn: conn, method: m, r: conn}
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		c.r = io.MultiReader(bytes.NewReader(bytes.Clone(rest)), conn)
	}
	if m == RC4 {
		c.enc, c.dec = enc, dec
	}
	return c
}

// Method is the method the handshake selected; 0 for a connection from Sniff that no
// handshake followed.
func (c *Conn) Method() Method { return c.method }

func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.r.Read(p)
	if c.dec != nil {
		c.dec.XORKeyStream(p[:n], p[:n])
	}
	return n, err
}

// writeChunk bounds the buffer a write encrypts into.
const writeChunk = 32 << 10

func (c *Conn) Write(p []byte) (int, error) {
	if c.enc == nil {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		if cap(c.wbuf) < n {
			c.wbuf = make([]byte, n)
		}
		buf := c.wbuf[:n]
		c.enc.XORKeyStream(buf, p[:n])
		m, err := c.Conn.Write(buf)
		written += m
		if err != nil {
			// The keystream ran ahead of the socket: the connection is unusable anyway.
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Prepend returns a connection whose reads return b before what conn reads, e.g. the
// initial payload Accept returned, so the BitTorrent handshake is read from the stream as
// on a plaintext connection. conn must not be used directly afterwards.
func Prepend(conn net.Conn, b []byte) net.Conn {
	if len(b) == 0 {
		return conn
	}
	c, ok := conn.(*Conn)
	if !ok {
		c = &Conn{Conn: conn, r: conn}
	}
	c.rmu.Lock()
	c.pending = append(bytes.Clone(b), c.pending...)
	c.rmu.Unlock()
	return c
}

// protocolHeader opens every plaintext BitTorrent handshake.
const protocolHeader = "\x13BitTorrent protocol"

// Sniff reads the first bytes of an accepted connection and tells whether they open a
// plaintext BitTorrent handshake (the byte 19, then "BitTorrent protocol"); anything else
// is taken for an MSE handshake. The returned connection reads those bytes again. It reads
// at most 20 bytes, which both kinds of peer send without waiting for us.
func Sniff(conn net.Conn) (net.Conn, bool, error) {
	buf := make([]byte, len(protocolHeader))
	if _, err := io.ReadFull(conn, buf[:1]); err != nil {
		return nil, false, err
	}
	n := 1
	if buf[0] == protocolHeader[0] {
		if _, err := io.ReadFull(conn, buf[1:]); err != nil {
			return nil, false, err
		}
		n = len(buf)
	}
	plain := string(buf[:n]) == protocolHeader
	return &Conn{Conn: conn, r: io.MultiReader(bytes.NewReader(buf[:n]), conn)}, plain, nil
}
