package udpmux

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(pc)
	t.Cleanup(func() { m.Close() })
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	for _, s := range []string{"d1:y1:qe", "\x41\x00utp", "d2:ab"} {
		peer.WriteTo([]byte(s), pc.LocalAddr())
	}
	buf := make([]byte, 100)
	for _, want := range []struct {
		v    *View
		data string
	}{{m.KRPC(), "d1:y1:qe"}, {m.KRPC(), "d2:ab"}, {m.UTP(), "\x41\x00utp"}} {
		want.v.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := want.v.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want.data || from.String() != peer.LocalAddr().String() {
			t.Fatalf("got %q from %v, %v; want %q", buf[:n], from, err, want.data)
		}
	}
	// Writes leave from the shared socket.
	m.UTP().WriteTo([]byte("x"), peer.LocalAddr())
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, from, err := peer.ReadFrom(buf); err != nil || from.String() != pc.LocalAddr().String() {
		t.Fatalf("write came from %v, %v", from, err)
	}
	// A deadline in the past times out; Close ends reads.
	m.KRPC().SetReadDeadline(time.Now())
	var ne net.Error
	if _, _, err := m.KRPC().ReadFrom(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	m.UTP().Close()
	if _, _, err := m.UTP().ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed view: %v", err)
	}
}
