package swarm

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// quickAckOn reads TCP_QUICKACK back: Linux reports 1 while the socket is out of its
// "ping-pong" mode, the one in which it delays acknowledgements.
func quickAckOn(t *testing.T, c net.Conn) int {
	t.Helper()
	if q, ok := c.(*quickAckConn); ok {
		c = q.Conn
	}
	tc := c.(*net.TCPConn)
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestQuickAckAfterExchange: after a few small request/answer exchanges a plain socket
// delays its acknowledgements (the kernel's ping-pong mode), and one wrapped by
// withQuickAck acknowledges at once after each of its reads.
func TestQuickAckAfterExchange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, wrap := range []bool{false, true} {
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if wrap {
			a = withQuickAck(a)
			if _, ok := a.(*quickAckConn); !ok {
				t.Fatal("a TCP connection was not wrapped")
			}
		}
		buf := make([]byte, 1)
		for range 8 {
			if _, err := a.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(b, buf); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Write([]byte{2}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(a, buf); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := quickAckOn(t, a), map[bool]int{false: 0, true: 1}[wrap]; got != want {
			t.Errorf("wrapped %v: TCP_QUICKACK reads %d after the exchange, want %d", wrap, got, want)
		}
		a.Close()
		b.Close()
	}
}

// TestQuickAckSkippedWhileUploading: a wrapped connection that writes a block's worth
// between its reads (an upload: the acknowledgements ride on our segments) leaves the
// kernel's ping-pong mode alone, like a plain socket; the first read after a small write
// acknowledges at once again.
func TestQuickAckSkippedWhileUploading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a = withQuickAck(a)
	exchange := func(n int) {
		t.Helper()
		if _, err := a.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Write([]byte{2}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		exchange(quickAckSkipAfter)
	}
	if got := quickAckOn(t, a); got != 0 {
		t.Errorf("TCP_QUICKACK reads %d after uploading exchanges, want 0 (no quick acks asked)", got)
	}
	exchange(1)
	if got := quickAckOn(t, a); got != 1 {
		t.Errorf("TCP_QUICKACK reads %d after a small exchange, want 1", got)
	}
}

// TestQuickAckSkippedWhileReceiving: in ping-pong mode after small exchanges, a read that
// follows one that filled a large buffer leaves the mode alone (more was waiting); the
// read after a short one asks for the quick ack again.
func TestQuickAckSkippedWhileReceiving(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Ping-pong mode first, on the plain socket, as TestQuickAckAfterExchange shows.
	buf := make([]byte, 1)
	for range 8 {
		if _, err := raw.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Write([]byte{2}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(raw, buf); err != nil {
			t.Fatal(err)
		}
	}
	if quickAckOn(t, raw) != 0 {
		t.Skip("the kernel did not enter ping-pong mode")
	}
	a := withQuickAck(raw).(*quickAckConn)
	a.full = true // as after a read that filled a large buffer
	if _, err := b.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, quickAckSkipAfter)
	n, err := a.Read(big)
	if err != nil {
		t.Fatal(err)
	}
	if got := quickAckOn(t, a); got != 0 {
		t.Errorf("TCP_QUICKACK reads %d after a read that followed a full one, want 0 (not asked)", got)
	}
	if n == len(big) || a.full {
		t.Fatalf("a %d-byte read of 100 bytes counted as full", n)
	}
	if _, err := b.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(big); err != nil {
		t.Fatal(err)
	}
	if got := quickAckOn(t, a); got != 1 {
		t.Errorf("TCP_QUICKACK reads %d after a read that followed a short one, want 1", got)
	}
}
