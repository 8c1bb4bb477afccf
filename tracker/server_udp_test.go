package tracker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// srvTestUDP is a hand-written BEP 15 client bound to one local address.
type srvTestUDP struct {
	t    *testing.T
	conn *net.UDPConn
	tid  uint32
}

func newSrvTestUDP(t *testing.T, local string, tracker *net.UDPAddr) *srvTestUDP {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, tracker)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &srvTestUDP{t: t, conn: c}
}

// roundTrip sends pkt and returns the reply's action and body after checking the
// transaction id.
func (c *srvTestUDP) roundTrip(pkt []byte) (uint32, []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(pkt); err != nil {
		c.t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	if n < 8 {
		c.t.Fatalf("reply of %d bytes", n)
	}
	if tid := binary.BigEndian.Uint32(buf[4:]); tid != binary.BigEndian.Uint32(pkt[12:]) {
		c.t.Fatalf("reply transaction id %d, sent %d", tid, binary.BigEndian.Uint32(pkt[12:]))
	}
	return binary.BigEndian.Uint32(buf), buf[8:n]
}

func (c *srvTestUDP) header(connID uint64, action uint32) []byte {
	c.tid++
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, action)
	return binary.BigEndian.AppendUint32(b, c.tid+1000)
}

func (c *srvTestUDP) connect() uint64 {
	c.t.Helper()
	action, body := c.roundTrip(c.header(udpProtocolID, udpActionConnect))
	if action != udpActionConnect || len(body) != 8 {
		c.t.Fatalf("connect reply: action %d, body %q", action, body)
	}
	return binary.BigEndian.Uint64(body)
}

func srvTestAnnouncePacket(hdr []byte, ih, id [20]byte, left uint64, event uint32, ip [4]byte, numWant int32, port uint16) []byte {
	b := append(hdr, ih[:]...)
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint64(b, 0) // downloaded
	b = binary.BigEndian.AppendUint64(b, left)
	b = binary.BigEndian.AppendUint64(b, 0) // uploaded
	b = binary.BigEndian.AppendUint32(b, event)
	b = append(b, ip[:]...)
	b = binary.BigEndian.AppendUint32(b, 42) // key
	b = binary.BigEndian.AppendUint32(b, uint32(numWant))
	return binary.BigEndian.AppendUint16(b, port)
}

type srvTestUDPAnnounceReply struct {
	interval, leechers, seeders uint32
	peers                       []netip.AddrPort
}

func srvTestParseUDPAnnounce(t *testing.T, action uint32, body []byte, addrLen int) srvTestUDPAnnounceReply {
	t.Helper()
	if action != udpActionAnnounce {
		t.Fatalf("announce reply: action %d, body %q", action, body)
	}
	if len(body) < 12 || (len(body)-12)%(addrLen+2) != 0 {
		t.Fatalf("announce reply of %d bytes", len(body))
	}
	r := srvTestUDPAnnounceReply{
		interval: binary.BigEndian.Uint32(body),
		leechers: binary.BigEndian.Uint32(body[4:]),
		seeders:  binary.BigEndian.Uint32(body[8:]),
	}
	for b := body[12:]; len(b) > 0; b = b[addrLen+2:] {
		a, _ := netip.AddrFromSlice(b[:addrLen])
		r.peers = append(r.peers, netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[addrLen:])))
	}
	return r
}

func TestServerUDP(t *testing.T) {
	srv := startSrvTestServer(t, ServerConfig{Interval: 100 * time.Second})
	ih := srvTestHash(20)

	seeder := newSrvTestUDP(t, "127.0.0.11", srv.udpAddr)
	sid := seeder.connect()
	action, body := seeder.roundTrip(srvTestAnnouncePacket(seeder.header(sid, udpActionAnnounce), ih, srvTestPeerID(1), 0, 2, [4]byte{}, -1, 7001))
	r := srvTestParseUDPAnnounce(t, action, body, 4)
	if r.interval != 100 || r.seeders != 1 || r.leechers != 0 || len(r.peers) != 0 {
		t.Fatalf("seeder's announce: %+v", r)
	}

	// A leecher on 127.0.0.1 that names itself 127.0.0.12 in the IP field.
	leecher := newSrvTestUDP(t, "127.0.0.1", srv.udpAddr)
	lid := leecher.connect()
	action, body = leecher.roundTrip(srvTestAnnouncePacket(leecher.header(lid, udpActionAnnounce), ih, srvTestPeerID(2), 100, 2, [4]byte{127, 0, 0, 12}, -1, 7002))
	r = srvTestParseUDPAnnounce(t, action, body, 4)
	if r.seeders != 1 || r.leechers != 1 || len(r.peers) != 1 || r.peers[0] != netip.MustParseAddrPort("127.0.0.11:7001") {
		t.Fatalf("leecher's announce: %+v", r)
	}
	// The seeder now learns of the leecher at the address it named.
	action, body = seeder.roundTrip(srvTestAnnouncePacket(seeder.header(sid, udpActionAnnounce), ih, srvTestPeerID(1), 0, 0, [4]byte{}, -1, 7001))
	r = srvTestParseUDPAnnounce(t, action, body, 4)
	if len(r.peers) != 1 || r.peers[0] != netip.MustParseAddrPort("127.0.0.12:7002") {
		t.Fatalf("seeder's re-announce: %+v", r)
	}
	// numwant 0 still counts but returns nobody.
	action, body = leecher.roundTrip(srvTestAnnouncePacket(leecher.header(lid, udpActionAnnounce), ih, srvTestPeerID(2), 0, 1, [4]byte{127, 0, 0, 12}, 0, 7002))
	r = srvTestParseUDPAnnounce(t, action, body, 4)
	if r.seeders != 2 || r.leechers != 0 || len(r.peers) != 0 {
		t.Fatalf("completed announce with numwant 0: %+v", r)
	}

	t.Run("scrape", func(t *testing.T) {
		other := srvTestHash(21)
		pkt := append(leecher.header(lid, udpActionScrape), ih[:]...)
		pkt = append(pkt, other[:]...)
		action, body := leecher.roundTrip(pkt)
		if action != udpActionScrape || len(body) != 24 {
			t.Fatalf("scrape reply: action %d, %d bytes", action, len(body))
		}
		got := [6]uint32{}
		for i := range got {
			got[i] = binary.BigEndian.Uint32(body[4*i:])
		}
		if want := [6]uint32{2, 1, 0, 0, 0, 0}; got != want {
			t.Fatalf("scrape: %v, want %v (seeders, completed, leechers per hash)", got, want)
		}
	})
	t.Run("scrape beyond 74 hashes", func(t *testing.T) {
		pkt := leecher.header(lid, udpActionScrape)
		for range 80 {
			pkt = append(pkt, ih[:]...)
		}
		_, body := leecher.roundTrip(pkt)
		if len(body) != 74*12 {
			t.Fatalf("scrape of 80 hashes answered %d bytes, want %d", len(body), 74*12)
		}
	})
	t.Run("connection id of another address", func(t *testing.T) {
		other := newSrvTestUDP(t, "127.0.0.13", srv.udpAddr)
		action, body := other.roundTrip(srvTestAnnouncePacket(other.header(lid, udpActionAnnounce), ih, srvTestPeerID(3), 5, 0, [4]byte{}, -1, 7003))
		if action != udpActionError || !strings.Contains(string(body), "connection id") {
			t.Fatalf("reply action %d %q, want an error about the connection id", action, body)
		}
	})
	t.Run("short packet ignored", func(t *testing.T) {
		// No reply to 15 bytes: the next reply read answers the connect sent after it.
		if _, err := leecher.conn.Write(make([]byte, 15)); err != nil {
			t.Fatal(err)
		}
		leecher.connect()
	})
}

// TestServerUDPHandle feeds packets straight to the handler: malformed packets, connection
// id expiry on a driven clock, and IPv6 sources, without needing sockets for each case.
func TestServerUDPHandle(t *testing.T) {
	clock := newSrvTestClock()
	s := NewServer(ServerConfig{Now: clock.Now}, testutil.Log(t))
	conns := newSrvUDPConns()
	src4 := netip.MustParseAddrPort("127.0.0.11:5000")
	src6 := netip.MustParseAddrPort("[::1]:5000")
	ih := srvTestHash(30)
	c := &srvTestUDP{t: t}

	connect := func(src netip.AddrPort) uint64 {
		t.Helper()
		reply := s.handleUDP(c.header(udpProtocolID, udpActionConnect), src, conns)
		if len(reply) != 16 || binary.BigEndian.Uint32(reply) != udpActionConnect {
			t.Fatalf("connect reply %x", reply)
		}
		return binary.BigEndian.Uint64(reply[8:])
	}
	id4 := connect(src4)
	if id4b := connect(src4); id4b == id4 {
		t.Fatalf("two connects gave the same connection id %x", id4)
	}

	errorOf := func(reply []byte) string {
		if len(reply) < 8 || binary.BigEndian.Uint32(reply) != udpActionError {
			return ""
		}
		return string(reply[8:])
	}
	tests := []struct {
		name string
		pkt  []byte
		want string // "" means no reply at all
	}{
		{"empty", nil, ""},
		{"15 bytes", make([]byte, 15), ""},
		{"connect with a wrong protocol id", c.header(12345, udpActionConnect), "protocol id"},
		{"unknown action", c.header(id4, 9), "unknown action"},
		{"short announce", c.header(id4, udpActionAnnounce), "announce of 16 bytes"},
		{"announce, bad connection id", srvTestAnnouncePacket(c.header(id4+1, udpActionAnnounce), ih, srvTestPeerID(1), 1, 0, [4]byte{}, -1, 1), "connection id"},
		{"announce, bad event", srvTestAnnouncePacket(c.header(id4, udpActionAnnounce), ih, srvTestPeerID(1), 1, 7, [4]byte{}, -1, 1), "invalid event"},
		{"announce, port 0", srvTestAnnouncePacket(c.header(id4, udpActionAnnounce), ih, srvTestPeerID(1), 1, 0, [4]byte{}, -1, 0), "invalid port"},
		{"announce, negative left", srvTestAnnouncePacket(c.header(id4, udpActionAnnounce), ih, srvTestPeerID(1), 1<<63, 0, [4]byte{}, -1, 1), "negative"},
		{"scrape without hashes", c.header(id4, udpActionScrape), "without info_hash"},
	}
	for _, tt := range tests {
		reply := s.handleUDP(tt.pkt, src4, conns)
		if tt.want == "" {
			if reply != nil {
				t.Errorf("%s: reply %x, want none", tt.name, reply)
			}
			continue
		}
		if msg := errorOf(reply); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: reply %x (%q), want an error containing %q", tt.name, reply, msg, tt.want)
		}
		if len(reply) >= 8 && !bytes.Equal(reply[4:8], tt.pkt[12:16]) {
			t.Errorf("%s: error for transaction %x, sent %x", tt.name, reply[4:8], tt.pkt[12:16])
		}
	}

	// IPv6: the reply carries 18-byte peers, and only IPv6 ones.
	id6 := connect(src6)
	s.handleUDP(srvTestAnnouncePacket(c.header(id4, udpActionAnnounce), ih, srvTestPeerID(1), 0, 2, [4]byte{}, -1, 4001), src4, conns)
	s.handleUDP(srvTestAnnouncePacket(c.header(id6, udpActionAnnounce), ih, srvTestPeerID(2), 0, 2, [4]byte{}, -1, 4002), netip.MustParseAddrPort("[::1]:5000"), conns)
	reply := s.handleUDP(srvTestAnnouncePacket(c.header(id6, udpActionAnnounce), ih, srvTestPeerID(3), 9, 2, [4]byte{10, 0, 0, 1}, -1, 4003), src6, conns)
	r := srvTestParseUDPAnnounce(t, binary.BigEndian.Uint32(reply), reply[8:], 16)
	if r.seeders != 2 || r.leechers != 1 || len(r.peers) != 1 || r.peers[0] != netip.MustParseAddrPort("[::1]:4002") {
		t.Fatalf("IPv6 announce: %+v", r)
	}
	// The IPv4 leecher sees only the IPv4 seeder; the IPv6 one does not fit its reply.
	reply = s.handleUDP(srvTestAnnouncePacket(c.header(id4, udpActionAnnounce), ih, srvTestPeerID(4), 9, 2, [4]byte{}, -1, 4004), src4, conns)
	r = srvTestParseUDPAnnounce(t, binary.BigEndian.Uint32(reply), reply[8:], 4)
	if len(r.peers) != 1 || r.peers[0] != netip.MustParseAddrPort("127.0.0.11:4001") {
		t.Fatalf("IPv4 announce: %+v", r)
	}

	// Connection ids last two minutes, then must be renewed.
	clock.Advance(2 * time.Minute)
	reply = s.handleUDP(append(c.header(id4, udpActionScrape), ih[:]...), src4, conns)
	if binary.BigEndian.Uint32(reply) != udpActionScrape {
		t.Fatalf("scrape with a 2-minute-old connection id: %q", reply)
	}
	clock.Advance(time.Second)
	reply = s.handleUDP(append(c.header(id4, udpActionScrape), ih[:]...), src4, conns)
	if msg := errorOf(reply); !strings.Contains(msg, "connection id") {
		t.Fatalf("scrape with an expired connection id: %q", reply)
	}
	fresh := connect(src4)
	reply = s.handleUDP(append(c.header(fresh, udpActionScrape), ih[:]...), src4, conns)
	if binary.BigEndian.Uint32(reply) != udpActionScrape {
		t.Fatalf("scrape with a fresh connection id: %q", reply)
	}
	// Expired ids are purged from the table.
	if _, ok := conns.ids[id4]; ok {
		t.Error("expired connection id still in the table")
	}
}

// TestServerUDPIPv6Socket announces over a real [::1] socket when the host has IPv6.
func TestServerUDPIPv6Socket(t *testing.T) {
	ln, pc, err := ListenServer("[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	s := NewServer(ServerConfig{}, testutil.Log(t))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(t.Context(), ln, pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	ih := srvTestHash(40)
	a := newSrvTestUDP(t, "::1", pc.LocalAddr().(*net.UDPAddr))
	aid := a.connect()
	a.roundTrip(srvTestAnnouncePacket(a.header(aid, udpActionAnnounce), ih, srvTestPeerID(1), 0, 2, [4]byte{}, -1, 6001))
	b := newSrvTestUDP(t, "::1", pc.LocalAddr().(*net.UDPAddr))
	bid := b.connect()
	action, body := b.roundTrip(srvTestAnnouncePacket(b.header(bid, udpActionAnnounce), ih, srvTestPeerID(2), 10, 2, [4]byte{}, -1, 6002))
	r := srvTestParseUDPAnnounce(t, action, body, 16)
	if len(r.peers) != 1 || r.peers[0] != netip.MustParseAddrPort("[::1]:6001") {
		t.Fatalf("IPv6 announce over a socket: %+v", r)
	}
}

func FuzzServerParseUDPRequest(f *testing.F) {
	c := &srvTestUDP{}
	f.Add(c.header(udpProtocolID, udpActionConnect))
	f.Add(srvTestAnnouncePacket(c.header(77, udpActionAnnounce), srvTestHash(1), srvTestPeerID(1), 5, 2, [4]byte{127, 0, 0, 1}, -1, 6881))
	f.Add(append(c.header(77, udpActionScrape), make([]byte, 45)...))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		req, err := srvParseUDPRequest(pkt)
		if err != nil {
			if len(pkt) >= udpHeaderLen && err == errSrvUDPIgnore {
				t.Fatalf("ignored a %d-byte packet", len(pkt))
			}
			return
		}
		switch req.action {
		case udpActionConnect:
		case udpActionAnnounce:
			if len(pkt) < udpAnnounceLen || req.announce.Port == 0 || req.announce.Left < 0 {
				t.Fatalf("accepted announce %+v from %d bytes", req.announce, len(pkt))
			}
		case udpActionScrape:
			if n := len(req.hashes); n == 0 || n > udpMaxScrape || udpHeaderLen+20*n > len(pkt) {
				t.Fatalf("%d hashes from %d bytes", n, len(pkt))
			}
		default:
			t.Fatalf("accepted action %d", req.action)
		}
		// Whatever parses, the handler answers without panicking and within one MTU.
		s := NewServer(ServerConfig{}, testutil.Log(t))
		if reply := s.handleUDP(pkt, netip.MustParseAddrPort("127.0.0.1:1"), newSrvUDPConns()); len(reply) > 1500 {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}
