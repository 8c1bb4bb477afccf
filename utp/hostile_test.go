package utp

import (
	"net"
	"testing"
	"time"
)

// TestSynFlood: SYNs past the accept backlog are dropped; the socket holds no more.
func TestSynFlood(t *testing.T) {
	a, _ := newSocketPair(t, nil)
	pc := listenUDP(t)
	defer pc.Close()
	for i := 0; i < 10*acceptBacklog; i++ {
		h := header{typ: stSyn, connID: uint16(2 * i), seq: 1}
		pc.WriteTo(h.encode(nil), a.Addr())
	}
	// A packet for no connection is answered with a reset: once that comes, the socket
	// has read the whole flood before it (one sender, one receiver, loopback keeps order).
	h := header{typ: stData, connID: 60001, seq: 5}
	pc.WriteTo(h.encode(nil), a.Addr())
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := decode(buf[:n]); err == nil && r.typ == stReset {
			break
		}
	}
	a.mu.Lock()
	n := len(a.conns)
	a.mu.Unlock()
	if n > acceptBacklog {
		t.Fatalf("%d connections after a SYN flood; the backlog is %d", n, acceptBacklog)
	}
}

// TestHostileData: far-ahead sequence numbers, garbage and oversized data do not grow the
// reorder buffer past its bounds, and the connection still works.
func TestHostileData(t *testing.T) {
	a, b := newSocketPair(t, nil)
	ca, cb := connect(t, a, b)
	c := cb.(*Conn)
	raw, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Packets spoofed as a's come from another port: they must reach no connection.
	for i := 0; i < 1000; i++ {
		h := header{typ: stData, connID: c.recvID, seq: uint16(i * 97), payload: make([]byte, 1000)}
		raw.WriteTo(h.encode(nil), b.Addr())
		raw.WriteTo([]byte("garbage that is no packet at all"), b.Addr())
	}
	// From a's own socket: packets far ahead, within and past the reorder bound.
	b.mu.Lock()
	base := c.ackNr
	b.mu.Unlock()
	a.mu.Lock()
	for i := 2; i < 3*maxReorder; i += 3 {
		h := header{typ: stData, connID: c.recvID, seq: base + uint16(i), wnd: 1 << 20, payload: make([]byte, maxPayload)}
		a.write(&h, c.s.pc.LocalAddr().(*net.UDPAddr))
	}
	a.mu.Unlock()
	waitFor(t, 10*time.Second, "the packets to arrive", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(c.reorder) > 0
	})
	b.mu.Lock()
	if c.reordBytes > recvBufMax || len(c.reorder) > maxReorder {
		t.Errorf("reorder buffer holds %d packets, %d bytes", len(c.reorder), c.reordBytes)
	}
	b.mu.Unlock()
	_ = ca
}
