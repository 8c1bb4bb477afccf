package swarm_test

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/metainfo"
	"torrentfs/swarm/wire"
)

// The fake peers of hostile_test.go and metadata_test.go, and the tests that talk to our
// engine as a raw peer, share these: the accept loop, both ends of the handshake, and how
// to tell a hang-up from a timeout.

// fakePeerID is the peer id every fake peer and raw test connection sends.
var fakePeerID = wire.NewPeerID("-XX0001-")

// acceptPeers accepts connections on ip until the test ends, counting them in conns and
// serving each with serve on its own goroutine; t.Cleanup closes the listener and waits.
func acceptPeers(t *testing.T, ip string, conns *atomic.Int32, serve func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln
}

// answerHandshake reads the engine's handshake on c and answers for infoHash with the given
// reserved bits; false when the connection failed.
func answerHandshake(c net.Conn, infoHash metainfo.Hash, res wire.Reserved) bool {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := wire.ReadHandshakeHeader(c); err != nil {
		return false
	}
	if _, err := wire.ReadPeerID(c); err != nil {
		return false
	}
	return wire.WriteHandshake(c, wire.Handshake{Reserved: res, InfoHash: infoHash, PeerID: fakePeerID}) == nil
}

// dialHandshake connects to our engine at addr as a peer of infoHash with the given
// reserved bits and completes the handshake; t.Cleanup closes the connection. The
// connection has no deadline when it is returned.
func dialHandshake(t *testing.T, addr net.Addr, infoHash metainfo.Hash, res wire.Reserved) net.Conn {
	t.Helper()
	return dialHandshake2(t, addr, infoHash, res).c
}

// rawConn is a test's end of a connection to our engine: the socket, a message reader on
// it and the handshake our engine answered with.
type rawConn struct {
	c  net.Conn
	r  *wire.Reader
	hs wire.Handshake
}

// dialHandshake2 is dialHandshake that also returns our engine's handshake and a reader.
func dialHandshake2(t *testing.T, addr net.Addr, infoHash metainfo.Hash, res wire.Reserved) rawConn {
	t.Helper()
	return dialHandshakeAs(t, addr, infoHash, res, fakePeerID)
}

// dialHandshakeAs is dialHandshake2 under another peer ID, for tests with several fake peers.
func dialHandshakeAs(t *testing.T, addr net.Addr, infoHash metainfo.Hash, res wire.Reserved, peerID [20]byte) rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := wire.WriteHandshake(c, wire.Handshake{Reserved: res, InfoHash: infoHash, PeerID: peerID}); err != nil {
		t.Fatal(err)
	}
	reserved, ih, err := wire.ReadHandshakeHeader(c)
	if err != nil {
		t.Fatal(err)
	}
	id, err := wire.ReadPeerID(c)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	return rawConn{c: c, r: wire.NewReader(c, 1<<20), hs: wire.Handshake{Reserved: reserved, InfoHash: ih, PeerID: id}}
}

// expectHangUp reads messages from r until the engine hangs up; it fails the test with
// msg when the read fails otherwise (the caller's deadline passed).
func expectHangUp(t *testing.T, r *wire.Reader, msg string) {
	t.Helper()
	for {
		if _, err := r.Read(); err != nil {
			if !hungUp(err) {
				t.Fatal(msg)
			}
			return
		}
	}
}

// hungUp tells whether a read failed because the engine closed the connection (EOF or
// reset) rather than because the fake peer's own deadline passed.
func hungUp(err error) bool {
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
