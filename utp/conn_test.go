package utp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func addrOf(s *Socket) netip.AddrPort { return s.Addr().(*net.UDPAddr).AddrPort() }

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// connect dials b from a and accepts it on b.
func connect(t *testing.T, a, b *Socket) (net.Conn, net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := b.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, err := a.DialContext(ctx, addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	cb := <-accepted
	if cb == nil {
		t.FailNow()
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// exchange sends n bytes each way at once and checks what arrives.
func exchange(t *testing.T, ca, cb net.Conn, n int) {
	t.Helper()
	errs := make(chan error, 4)
	side := func(c net.Conn, out, in []byte) {
		go func() {
			_, err := c.Write(out)
			errs <- err
		}()
		got := make([]byte, len(in))
		_, err := io.ReadFull(c, got)
		if err == nil && !bytes.Equal(got, in) {
			err = errors.New("data differ")
		}
		errs <- err
	}
	da, db := randomBytes(n, 1), randomBytes(n, 2)
	go side(ca, da, db)
	go side(cb, db, da)
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	a, b := newSocketPair(t, nil)
	ca, cb := connect(t, a, b)
	exchange(t, ca, cb, 16<<20)
}

func TestLossAndReorder(t *testing.T) {
	a, b := newSocketPair(t, func(pc net.PacketConn) net.PacketConn { return newLossy(pc, 7, 0.05, 0.05) })
	ca, cb := connect(t, a, b)
	exchange(t, ca, cb, 4<<20)
}

// TestCloseDeliversAll: a writer that closes at once still gets everything to the reader,
// which then reads EOF (the FIN).
func TestCloseDeliversAll(t *testing.T) {
	a, b := newSocketPair(t, func(pc net.PacketConn) net.PacketConn { return newLossy(pc, 3, 0.02, 0) })
	ca, cb := connect(t, a, b)
	d := randomBytes(3<<20, 3)
	go func() {
		ca.Write(d)
		ca.Close()
	}()
	got, err := io.ReadAll(cb)
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("read %d bytes of %d: %v", len(got), len(d), err)
	}
	waitFor(t, 10*time.Second, "the closed connection to be forgotten", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.conns) == 0
	})
}

func TestDeadline(t *testing.T) {
	a, b := newSocketPair(t, nil)
	ca, _ := connect(t, a, b)
	ca.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := ca.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
}

// TestResetUnknown: a data packet for no connection is answered with ST_RESET.
func TestResetUnknown(t *testing.T) {
	a, _ := newSocketPair(t, nil)
	pc := listenUDP(t)
	defer pc.Close()
	h := header{typ: stData, connID: 1234, seq: 9, payload: []byte("x")}
	pc.WriteTo(h.encode(nil), a.Addr())
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decode(buf[:n])
	if err != nil || r.typ != stReset || r.connID != 1234 || r.ack != 9 {
		t.Fatalf("got %+v, %v", r, err)
	}
}

// TestPeerReset: a reset peer's reads end with ErrReset.
func TestPeerReset(t *testing.T) {
	a, b := newSocketPair(t, nil)
	ca, cb := connect(t, a, b)
	a.mu.Lock()
	ca.(*Conn).sendControl(stReset)
	a.mu.Unlock()
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("read after reset: %v", err)
	}
}

// TestDialTimesOut: a dial to a silent address gives up.
func TestDialContextCancel(t *testing.T) {
	a, _ := newSocketPair(t, nil)
	pc := listenUDP(t) // never answers
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.DialContext(ctx, pc.LocalAddr().(*net.UDPAddr).AddrPort()); err == nil {
		t.Fatal("dial to a silent peer succeeded")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.conns) != 0 {
		t.Fatalf("%d connections left", len(a.conns))
	}
}

// A socket without connections runs no timers; the first connection starts them. (The
// first half waits a while to see that nothing happens: there is no event to wait for.)
func TestIdleSocketSleeps(t *testing.T) {
	sa, sb := newSocketPair(t, nil)
	time.Sleep(20 * tickInterval)
	if n := sa.ticks.Load(); n > 1 {
		t.Fatalf("an idle socket ran its timers %d times in %v", n, 20*tickInterval)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sa.DialContext(ctx, addrOf(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for sa.ticks.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("timers ran %d times with a connection", sa.ticks.Load())
		}
		time.Sleep(tickInterval)
	}
}

// TestLibtorrentSACK: a peer that sends its selective ACKs as libtorrent does, in whole
// bytes for its reorder span rather than the multiple of 4 BEP 29 asks, on its data
// packets too. Its data is read and its SACK taken: were such packets dropped, a peer
// with a hole to fill would go unheard (its requests, its ACKs) until it gave up.
func TestLibtorrentSACK(t *testing.T) {
	a, _ := newSocketPair(t, nil)
	peer := listenUDP(t)
	defer peer.Close()
	to := a.Addr()
	const id, peerSeq = 500, 100
	syn := header{typ: stSyn, connID: id, seq: peerSeq, wnd: 1 << 20}
	peer.WriteTo(syn.encode(nil), to)
	nc, err := a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := nc.(*Conn)

	// Four packets fill a new connection's window.
	if _, err := c.Write(randomBytes(4*maxPayload, 3)); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	var first uint16
	for n := 0; n < 4; {
		k, _, err := peer.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := decode(buf[:k]); err == nil && h.typ == stData {
			if n == 0 {
				first = h.seq
			}
			n++
		}
	}

	// The first one lost: the peer has the other three, bits 0 to 2 of a 3-byte mask.
	d := header{typ: stData, connID: id + 1, seq: peerSeq + 1, ack: first - 1, wnd: 1 << 20,
		sack: []byte{0x07, 0, 0}, payload: []byte("request")}
	peer.WriteTo(d.encode(nil), to)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 16)
	n, err := c.Read(got)
	if err != nil || string(got[:n]) != "request" {
		t.Fatalf("read %q, %v; want the data of a packet with a 3-byte SACK", got[:n], err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range c.inflight {
		if want := p.seq != first; p.acked != want {
			t.Errorf("packet %d: acked %v, want %v", p.seq-first, p.acked, want)
		}
	}
}

// muteConn drops everything it sends once muted: a peer that vanished without a word
// (libtorrent 2.0 never resets a connection it has forgotten).
type muteConn struct {
	net.PacketConn
	muted atomic.Bool
}

func (m *muteConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if m.muted.Load() {
		return len(b), nil
	}
	return m.PacketConn.WriteTo(b, to)
}

// A connection whose peer goes silent while data is in flight fails with ErrTimeout after
// the socket's deadSilence, not after the doubling retransmission timeouts (minutes).
func TestSilentPeerTimesOut(t *testing.T) {
	var mute *muteConn
	wrapped := 0
	a, b := newSocketPair(t, func(pc net.PacketConn) net.PacketConn {
		if wrapped++; wrapped == 1 {
			return pc // a's
		}
		mute = &muteConn{PacketConn: pc} // b's
		return mute
	})
	a.mu.Lock()
	a.deadSilence = time.Second
	a.mu.Unlock()
	ca, cb := connect(t, a, b)
	exchange(t, ca, cb, 64<<10)
	mute.muted.Store(true)
	errc := make(chan error, 1)
	go func() {
		_, err := ca.Write(randomBytes(8<<20, 5))
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("write to a silent peer: %v, want ErrTimeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write to a silent peer still waits after 20 s (deadSilence is 1 s here)")
	}
}
