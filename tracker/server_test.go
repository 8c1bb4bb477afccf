package tracker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// srvTestClock is a clock the test moves by hand.
type srvTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newSrvTestClock() *srvTestClock {
	return &srvTestClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *srvTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *srvTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// srvTestServer is a running tracker on 127.0.0.1 with HTTP and UDP on one port.
type srvTestServer struct {
	*Server
	httpBase string // http://127.0.0.1:P
	udpAddr  *net.UDPAddr
	port     int
}

// startSrvTestServer serves cfg on 127.0.0.1:0 until the test ends.
func startSrvTestServer(t testing.TB, cfg ServerConfig) *srvTestServer {
	t.Helper()
	ln, pc, err := ListenServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, testutil.Log(t))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), ln, pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	return &srvTestServer{
		Server:   s,
		httpBase: fmt.Sprintf("http://127.0.0.1:%d", port),
		udpAddr:  pc.LocalAddr().(*net.UDPAddr),
		port:     port,
	}
}

func srvTestHash(b byte) [20]byte {
	var h [20]byte
	for i := range h {
		h[i] = b
	}
	return h
}

func srvTestPeerID(n int) [20]byte {
	var id [20]byte
	copy(id[:], fmt.Sprintf("-TS0001-%012d", n))
	return id
}

func TestServerListenSamePort(t *testing.T) {
	ln, pc, err := ListenServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	tp := ln.Addr().(*net.TCPAddr).Port
	up := pc.LocalAddr().(*net.UDPAddr).Port
	if tp != up || tp == 0 {
		t.Fatalf("tcp port %d, udp port %d: want the same non-zero port", tp, up)
	}
	// A fixed port that is taken fails instead of moving elsewhere.
	if ln2, pc2, err := ListenServer(ln.Addr().String()); err == nil {
		ln2.Close()
		pc2.Close()
		t.Fatalf("second ListenServer on %s succeeded", ln.Addr())
	}
}

func TestServerServeStops(t *testing.T) {
	for _, how := range []string{"close", "ctx"} {
		t.Run(how, func(t *testing.T) {
			ln, pc, err := ListenServer("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(ServerConfig{}, testutil.Log(t))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- s.Serve(ctx, ln, pc) }()
			// Leave an idle keep-alive HTTP connection and a UDP exchange behind: stopping
			// must not wait for the one nor leak the goroutines of either.
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/stats")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			u := newSrvTestUDP(t, "127.0.0.1", pc.LocalAddr().(*net.UDPAddr))
			u.connect()
			if how == "close" {
				s.Close()
			} else {
				cancel()
			}
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return")
			}
			s.Close() // again: a no-op
			srvWaitNoGoroutines(t, "torrentfs/tracker.(*Server)", "net/http.(*conn).serve")
			// The listeners are closed: the port can be bound again.
			ln2, err := net.Listen("tcp", ln.Addr().String())
			if err != nil {
				t.Fatalf("tcp port still held: %v", err)
			}
			ln2.Close()
			pc2, err := net.ListenPacket("udp", pc.LocalAddr().String())
			if err != nil {
				t.Fatalf("udp port still held: %v", err)
			}
			pc2.Close()
		})
	}
}

// srvWaitNoGoroutines waits until no goroutine has a frame containing any of frames.
func srvWaitNoGoroutines(t *testing.T, frames ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		var found []string
		for _, g := range strings.Split(stacks, "\n\n") {
			for _, f := range frames {
				if strings.Contains(g, f) && !strings.Contains(g, "srvWaitNoGoroutines") {
					found = append(found, g)
					break
				}
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after the server stopped:\n%s", strings.Join(found, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerPeerAddrPolicy(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		src, claimed, want string
	}{
		{"127.0.0.1", "", "127.0.0.1"},
		{"127.0.0.1", "127.0.0.11", "127.0.0.11"},
		{"127.0.0.1", "::1", "::1"},
		{"127.0.0.1", "8.8.8.8", "8.8.8.8"},       // a local client may name its public address
		{"8.8.4.4", "192.168.1.5", "192.168.1.5"}, // a private claim cannot hurt a third party
		{"8.8.4.4", "1.1.1.1", "8.8.4.4"},         // a public claim from a public source is ignored
		{"8.8.4.4", "0.0.0.0", "8.8.4.4"},
		{"::ffff:127.0.0.12", "", "127.0.0.12"},
		{"10.0.0.1", "::ffff:10.0.0.2", "10.0.0.2"},
	}
	for _, tt := range tests {
		var claimed netip.Addr
		if tt.claimed != "" {
			claimed = a(tt.claimed)
		}
		if got := srvPeerAddr(a(tt.src), claimed); got != a(tt.want) {
			t.Errorf("srvPeerAddr(%s, %q) = %s, want %s", tt.src, tt.claimed, got, tt.want)
		}
	}
}

// srvTestAnnounce is a direct announce on the swarm logic, no protocol in between.
func srvTestAnnounce(t *testing.T, s *Server, ih [20]byte, n int, left int64, ev Event, numWant int) AnnounceResponse {
	t.Helper()
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(n >> 8), byte(n)}), uint16(10000+n))
	resp, err := s.announce(AnnounceRequest{
		InfoHash: ih, PeerID: srvTestPeerID(n), Port: addr.Port(), Left: left, Event: ev, NumWant: numWant,
	}, addr, srvFamilyAny)
	if err != nil {
		t.Fatalf("announce peer %d: %v", n, err)
	}
	return resp
}

func TestServerNumWant(t *testing.T) {
	s := NewServer(ServerConfig{}, testutil.Log(t))
	ih := srvTestHash(1)
	for n := 1; n <= 300; n++ {
		srvTestAnnounce(t, s, ih, n, 100, EventStarted, 0)
	}
	tests := []struct{ numWant, want int }{
		{-1, ServerDefaultNumWant},
		{0, 0},
		{7, 7},
		{250, ServerMaxNumWant},
		{100000, ServerMaxNumWant},
	}
	for _, tt := range tests {
		resp := srvTestAnnounce(t, s, ih, 1, 100, EventNone, tt.numWant)
		if len(resp.Peers) != tt.want {
			t.Errorf("numwant %d: got %d peers, want %d", tt.numWant, len(resp.Peers), tt.want)
		}
		seen := map[netip.AddrPort]bool{}
		self := srvTestPeerID(1)
		for _, p := range resp.Peers {
			if string(p.ID) == string(self[:]) {
				t.Errorf("numwant %d: requester got itself", tt.numWant)
			}
			if seen[p.Addr] {
				t.Errorf("numwant %d: %s twice", tt.numWant, p.Addr)
			}
			seen[p.Addr] = true
		}
	}
}

// TestServerPeerSelectionRandom checks that small numwant samples cover the swarm rather
// than returning the same few peers every time.
func TestServerPeerSelectionRandom(t *testing.T) {
	s := NewServer(ServerConfig{}, testutil.Log(t))
	ih := srvTestHash(2)
	for n := 1; n <= 40; n++ {
		srvTestAnnounce(t, s, ih, n, 100, EventStarted, 0)
	}
	seen := map[netip.AddrPort]bool{}
	for range 200 {
		for _, p := range srvTestAnnounce(t, s, ih, 1, 100, EventNone, 5).Peers {
			seen[p.Addr] = true
		}
	}
	// 200 samples of 5 out of 39 miss a given peer with probability (34/39)^200 < 1e-11.
	if len(seen) != 39 {
		t.Fatalf("200 samples of 5 saw %d distinct peers, want all 39", len(seen))
	}
}

func TestServerSwarmLifecycle(t *testing.T) {
	clock := newSrvTestClock()
	s := NewServer(ServerConfig{Interval: time.Minute, PeerTTL: 3 * time.Minute, Now: clock.Now}, testutil.Log(t))
	ih := srvTestHash(3)
	stats := func() ScrapeStats { return s.Stats(ih) }

	srvTestAnnounce(t, s, ih, 1, 0, EventStarted, -1)   // seeder
	srvTestAnnounce(t, s, ih, 2, 500, EventStarted, -1) // leecher
	srvTestAnnounce(t, s, ih, 3, 500, EventStarted, -1) // leecher
	if got, want := stats(), (ScrapeStats{Complete: 1, Incomplete: 2}); got != want {
		t.Fatalf("after starts: %+v, want %+v", got, want)
	}
	// Seeders are told only about leechers.
	srvTestAnnounce(t, s, ih, 4, 0, EventStarted, -1)
	if got := srvTestAnnounce(t, s, ih, 1, 0, EventNone, -1).Peers; len(got) != 2 {
		t.Fatalf("seeder got %d peers, want the 2 leechers", len(got))
	}
	// A leecher hears of everyone else.
	if got := srvTestAnnounce(t, s, ih, 2, 500, EventNone, -1).Peers; len(got) != 3 {
		t.Fatalf("leecher got %d peers, want 3", len(got))
	}

	// completed counts a download once, however often it is repeated.
	srvTestAnnounce(t, s, ih, 2, 0, EventCompleted, -1)
	srvTestAnnounce(t, s, ih, 2, 0, EventCompleted, -1)
	if got, want := stats(), (ScrapeStats{Complete: 3, Downloaded: 1, Incomplete: 1}); got != want {
		t.Fatalf("after completed: %+v, want %+v", got, want)
	}

	// stopped removes the peer.
	resp := srvTestAnnounce(t, s, ih, 3, 500, EventStopped, -1)
	if len(resp.Peers) != 0 {
		t.Errorf("stopped announce got %d peers", len(resp.Peers))
	}
	if got, want := stats(), (ScrapeStats{Complete: 3, Downloaded: 1}); got != want {
		t.Fatalf("after stopped: %+v, want %+v", got, want)
	}

	// Peers 1 and 2 keep announcing; peer 4 misses its re-announces and expires.
	clock.Advance(2 * time.Minute)
	srvTestAnnounce(t, s, ih, 1, 0, EventNone, -1)
	srvTestAnnounce(t, s, ih, 2, 0, EventNone, -1)
	clock.Advance(90 * time.Second) // peer 4 last seen 3.5 min ago
	if got, want := stats(), (ScrapeStats{Complete: 2, Downloaded: 1}); got != want {
		t.Fatalf("after peer 4 expired: %+v, want %+v", got, want)
	}
	clock.Advance(10 * time.Minute)
	s.sweep(clock.Now())
	s.mu.Lock()
	left := len(s.torrents[ih].peers)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("after sweep %d peers remain", left)
	}
	// The download count outlives the peers.
	if got, want := stats(), (ScrapeStats{Downloaded: 1}); got != want {
		t.Fatalf("after all expired: %+v, want %+v", got, want)
	}

	// A torrent with no peers and no downloads is forgotten.
	ih2 := srvTestHash(4)
	srvTestAnnounce(t, s, ih2, 1, 10, EventStarted, -1)
	clock.Advance(time.Hour)
	s.sweep(clock.Now())
	s.mu.Lock()
	_, kept := s.torrents[ih2]
	s.mu.Unlock()
	if kept {
		t.Fatal("empty torrent kept after sweep")
	}
}

func TestServerPeerIDHijack(t *testing.T) {
	s := NewServer(ServerConfig{}, testutil.Log(t))
	ih := srvTestHash(5)
	id := srvTestPeerID(1)
	a := netip.MustParseAddrPort("127.0.0.11:6881")
	b := netip.MustParseAddrPort("127.0.0.12:6881")
	if _, err := s.announce(AnnounceRequest{InfoHash: ih, PeerID: id, Port: 6881, Key: 7, Left: 1, NumWant: -1}, a, srvFamilyAny); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		addr    netip.AddrPort
		key     uint32
		wantErr bool
	}{
		{"other address, other key", b, 8, true},
		{"same address, other key", a, 8, false},
		{"other address, same key", b, 8, false},
	}
	for _, tt := range tests {
		_, err := s.announce(AnnounceRequest{InfoHash: ih, PeerID: id, Port: 6881, Key: tt.key, Left: 1, NumWant: -1}, tt.addr, srvFamilyAny)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestServerRestartedPeer(t *testing.T) {
	s := NewServer(ServerConfig{}, nil)
	ih := srvTestHash(8)
	addr := netip.MustParseAddrPort("127.0.0.11:6881")
	for _, id := range [][20]byte{srvTestPeerID(1), srvTestPeerID(2)} {
		if _, err := s.announce(AnnounceRequest{InfoHash: ih, PeerID: id, Port: 6881, Left: 1, NumWant: -1}, addr, srvFamilyAny); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(ih); st.Incomplete != 1 {
		t.Fatalf("one address under two peer ids counted as %d leechers", st.Incomplete)
	}
	resp := srvTestAnnounce(t, s, ih, 3, 1, EventStarted, -1)
	if len(resp.Peers) != 1 || string(resp.Peers[0].ID) != srvTestPID(2) {
		t.Fatalf("peers %+v, want only the restarted peer's new id", resp.Peers)
	}
}

func TestServerAllowList(t *testing.T) {
	ok := srvTestHash(6)
	s := NewServer(ServerConfig{Allow: func(ih [20]byte) bool { return ih == ok }}, testutil.Log(t))
	if _, err := s.announce(AnnounceRequest{InfoHash: ok, PeerID: srvTestPeerID(1), Port: 1, NumWant: -1}, netip.MustParseAddrPort("127.0.0.1:1"), srvFamilyAny); err != nil {
		t.Fatalf("allowed torrent: %v", err)
	}
	if _, err := s.announce(AnnounceRequest{InfoHash: srvTestHash(7), PeerID: srvTestPeerID(1), Port: 1, NumWant: -1}, netip.MustParseAddrPort("127.0.0.1:1"), srvFamilyAny); err != errSrvNotAllowed {
		t.Fatalf("other torrent: err = %v, want %v", err, errSrvNotAllowed)
	}
}
