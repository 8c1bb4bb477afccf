package dht

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

func compact(ap string) string {
	a := netip.MustParseAddrPort(ap)
	b := a.Addr().AsSlice()
	return string(append(b, byte(a.Port()>>8), byte(a.Port())))
}

func TestExternalVotes(t *testing.T) {
	var e externalVotes
	voter := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }
	for i := range externalQuorum - 1 {
		e.add(voter(i), compact("203.0.113.7:6881"))
	}
	if _, ok := e.ip(); ok {
		t.Fatal("an external IP from fewer voters than the quorum")
	}
	e.add(voter(1), compact("203.0.113.7:6881")) // the same voter again counts once
	if _, ok := e.ip(); ok {
		t.Fatal("a voter counted twice")
	}
	e.add(voter(10), compact("203.0.113.7:1234"))
	if ip, ok := e.ip(); !ok || ip != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("ip() = %v, %v; want 203.0.113.7", ip, ok)
	}
	// Private, loopback and malformed reports are not votes.
	e.add(voter(20), compact("10.0.0.1:1"))
	e.add(voter(21), compact("127.0.0.1:1"))
	e.add(voter(22), "short")
	if len(e.votes) != externalQuorum {
		t.Fatalf("%d votes, want %d", len(e.votes), externalQuorum)
	}
	// Liars outnumbering the others leave no majority.
	for i := 30; i < 30+externalQuorum+1; i++ {
		e.add(voter(i), compact("192.0.2.99:1"))
	}
	if ip, ok := e.ip(); ok && ip != netip.MustParseAddr("192.0.2.99") {
		t.Fatalf("ip() = %v with no majority for it", ip)
	}
	// A flood of voters is bounded.
	for i := range 1000 {
		e.add(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), compact("192.0.2.99:1"))
	}
	if len(e.votes) > externalVoters {
		t.Fatalf("%d voters remembered, at most %d", len(e.votes), externalVoters)
	}
}

// The external IP a run learned is saved, and the next start takes a secure ID for it.
func TestExternalIPSavedAndSecureIDNextStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "dht.state")
	n, err := New(Config{Addr: "127.0.0.1:0", StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	ext := netip.MustParseAddr("203.0.113.7")
	if isSecureID(n.ID(), ext) {
		t.Fatal("a random ID that happens to be secure; run again")
	}
	// Nodes on distinct addresses answer our pings saying they see us at ext.
	for i := range externalQuorum {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(20+i))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				nr, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				q, err := decodeMsg(buf[:nr])
				if err != nil || q.Y != "q" {
					continue
				}
				id := randomID()
				b, _ := encodeMsg(&msg{T: q.T, Y: "r", R: &msgReply{ID: string(id[:])}, IP: compact("203.0.113.7:6881")})
				c.WriteToUDPAddrPort(b, from)
			}
		}()
		n.AddNode(c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.Stats().ExternalIP != ext {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().ExternalIP = %v after answers saying %v", n.Stats().ExternalIP, ext)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := New(Config{Addr: "127.0.0.1:0", StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if !isSecureID(n2.ID(), ext) {
		t.Fatalf("restarted with ID %x, not secure for the learned %v", n2.ID(), ext)
	}
}
