package swarm

import (
	"net"
	"sync/atomic"
	"syscall"
)

// A BitTorrent exchange over TCP is often a small message answered by a small message
// (MSE's key exchange, the handshakes, interested and unchoke, a request after a pause). A
// peer whose socket keeps Nagle's algorithm on (libtorrent's does) holds a small message back
// until its previous one is acknowledged, and Linux delays an acknowledgement up to 40 ms
// when the receiver has nothing to send. Measured against four qBittorrent seeders on
// loopback: an encrypted handshake took 45-50 ms (2-4 ms in plaintext), and a cold 64 KiB
// read of a fresh mount 65-87 ms; with every segment acknowledged at once, 10 ms and
// 21-24 ms. quickAckConn asks the kernel for that (TCP_QUICKACK) before a read: the flag
// does not stick, the kernel drops back to delayed acknowledgements on its own.
//
// It costs a system call per read: a seeder paid it per request (17 bytes) when its peers
// fetch at a few MiB/s, about 3% of its CPU, and a download from fast seeders a sixth of
// its system calls. So a read skips it
//   - when we wrote at least quickAckSkipAfter bytes since the previous read: we are
//     sending this peer blocks, and Linux sends a pending acknowledgement with our next
//     segment, so the ack is not delayed anyway;
//   - when the previous read filled a buffer of at least quickAckSkipAfter bytes: more
//     was waiting, so this read returns at once (and Linux acknowledges, at a read, more
//     than a segment left unacknowledged). A read that comes back short emptied the
//     socket, and the read after it, the one that waits, asks for the quick ack as
//     before. 94% of the reads of a download from four loopback seeders were full.
// Small exchanges (handshakes read to the byte, requests, a burst's tail that Nagle would
// hold for our delayed ack) get it before every read as before.

// quickAckSkipAfter is a block's worth: writes this large mean we are uploading.
const quickAckSkipAfter = 16 << 10

type quickAckConn struct {
	net.Conn
	rc syscall.RawConn
	// sent counts the bytes written since the last read: the writer goroutine adds, the
	// reader takes it back to zero.
	sent atomic.Int64
	full bool // the last read filled its buffer; the reader's alone
}

// withQuickAck wraps a TCP connection; other connections (uTP) come back as they are.
func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: c, rc: rc}
}

func (q *quickAckConn) Read(b []byte) (int, error) {
	if q.sent.Swap(0) < quickAckSkipAfter && !q.full {
		q.rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	n, err := q.Conn.Read(b)
	q.full = n == len(b) && n >= quickAckSkipAfter
	return n, err
}

func (q *quickAckConn) Write(b []byte) (int, error) {
	n, err := q.Conn.Write(b)
	q.sent.Add(int64(n))
	return n, err
}
