package dht

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// The examples of BEP 42.
var secureVectors = []struct{ ip, id string }{
	{"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
	{"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
	{"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
	{"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
	{"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
}

func TestSecureIDVectors(t *testing.T) {
	for _, v := range secureVectors {
		var id nodeID
		b, _ := hex.DecodeString(v.id)
		copy(id[:], b)
		ip := netip.MustParseAddr(v.ip)
		if !isSecureID(id, ip) {
			t.Errorf("%s %s: not secure", v.ip, v.id)
		}
		id[0] ^= 1
		if isSecureID(id, ip) {
			t.Errorf("%s: a changed ID is still secure", v.ip)
		}
	}
}

func TestSecureIDGenerated(t *testing.T) {
	for _, s := range []string{"124.31.75.21", "8.8.4.4", "2001:4860:4860::8888", "::ffff:1.2.3.4"} {
		ip := netip.MustParseAddr(s)
		for range 20 {
			id := secureID(ip)
			if !isSecureID(id, ip) {
				t.Fatalf("%s: generated %x is not secure", s, id)
			}
		}
		if isSecureID(secureID(ip), netip.MustParseAddr("99.99.99.99")) && isSecureID(secureID(ip), netip.MustParseAddr("99.99.99.98")) &&
			isSecureID(secureID(ip), netip.MustParseAddr("1.99.99.97")) {
			t.Fatalf("%s: IDs look secure for unrelated addresses", s)
		}
	}
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.1.1", "::1", "fd00::1"} {
		if !isSecureID(randomID(), netip.MustParseAddr(s)) {
			t.Errorf("%s should be exempt", s)
		}
	}
}

func TestTokens(t *testing.T) {
	tk := newTokens(t0)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	tok := tk.make(a)
	if !tk.valid(tok, a) || tk.valid(tok, b) || tk.valid("forged", a) || tk.valid("", a) {
		t.Fatal("token checks")
	}
	tk.maybeRotate(t0.Add(time.Minute))
	if !tk.valid(tok, a) {
		t.Fatal("rotated too early")
	}
	tk.maybeRotate(t0.Add(tokenRotate))
	if !tk.valid(tok, a) {
		t.Fatal("the previous secret is no longer accepted")
	}
	tk.maybeRotate(t0.Add(2 * tokenRotate))
	if tk.valid(tok, a) {
		t.Fatal("a token two rotations old is still accepted")
	}
}

func TestPeerStoreBounds(t *testing.T) {
	s := newPeerStore(3, 4)
	ih := func(n byte) nodeID { return nodeID{n} }
	for i := range 10 {
		s.add(ih(1), addrN(i), t0.Add(time.Duration(i)*time.Second))
	}
	got := s.sample(ih(1), 50, true, true, t0.Add(time.Minute))
	if len(got) != 4 || s.peers() != 4 {
		t.Fatalf("%d peers, %d counted", len(got), s.peers())
	}
	for _, p := range got {
		if p == addrN(0) {
			t.Fatal("the oldest peer was not evicted")
		}
	}
	// A re-announce refreshes instead of duplicating.
	s.add(ih(1), addrN(9), t0.Add(time.Minute))
	if s.peers() != 4 {
		t.Fatalf("%d peers after a re-announce", s.peers())
	}
	for n := range byte(10) {
		s.add(ih(10+n), addrN(1), t0.Add(time.Duration(n)*time.Second))
	}
	if s.torrents() != 3 || s.peers() > 3*4 {
		t.Fatalf("%d torrents, %d peers", s.torrents(), s.peers())
	}
	if len(s.sample(ih(19), 50, true, true, t0.Add(time.Minute))) != 1 {
		t.Fatal("the newest torrent was evicted")
	}
	// Families and expiry.
	s.add(ih(19), netip.MustParseAddrPort("[2001:db8::1]:1"), t0.Add(time.Minute))
	if len(s.sample(ih(19), 50, false, true, t0.Add(time.Minute))) != 1 || len(s.sample(ih(19), 50, true, false, t0.Add(time.Minute))) != 1 {
		t.Fatal("want filtering")
	}
	s.expire(t0.Add(time.Hour))
	if s.torrents() != 0 || s.peers() != 0 {
		t.Fatalf("after expiry: %d torrents, %d peers", s.torrents(), s.peers())
	}
}

func TestIPLimiter(t *testing.T) {
	l := newIPLimiter(10, 20, 2)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	n := 0
	for range 100 {
		if l.allow(a, t0) {
			n++
		}
	}
	if n != 20 {
		t.Fatalf("burst let %d through", n)
	}
	if !l.allow(a, t0.Add(time.Second)) {
		t.Fatal("no refill")
	}
	if !l.allow(b, t0) || l.allow(c, t0) {
		t.Fatal("the map is not bounded")
	}
	if !l.allow(c, t0.Add(time.Hour)) {
		t.Fatal("idle sources were not forgotten")
	}
}
