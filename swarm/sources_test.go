package swarm_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// staticSource is a peer source (what the DHT or LSD is to a client) that reports the
// given peers once per torrent and records what it was asked.
type staticSource struct {
	mu    sync.Mutex
	peers []netip.AddrPort
	asked map[[20]byte]uint16 // info-hash -> the port we announced
}

func (s *staticSource) source() swarm.PeerSource {
	return swarm.PeerSource{Name: "static", Find: func(ctx context.Context, ih [20]byte, port uint16, found func([]netip.AddrPort)) {
		s.mu.Lock()
		if s.asked == nil {
			s.asked = map[[20]byte]uint16{}
		}
		s.asked[ih] = port
		peers := s.peers
		s.mu.Unlock()
		found(peers)
		<-ctx.Done()
	}}
}

func (s *staticSource) wasAsked(ih [20]byte) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.asked[ih]
	return p, ok
}

// A torrent with no trackers and no peers of its own downloads from the peers a source
// finds, and so does a magnet link's metadata fetch; the source is told our port.
func TestPeersFromSources(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{})

	s := &staticSource{peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}}
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.2:0", Sources: []swarm.PeerSource{s.source()}})
	got, err := fetch(t, c, mi.Magnet(), 30*time.Second)
	if err != nil {
		t.Fatalf("metadata through the source: %v", err)
	}
	tr := addTorrent(t, c, got, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}})
	waitComplete(t, tr, 60*time.Second)
	if port, ok := s.wasAsked(mi.InfoHash); !ok || port != c.Port() {
		t.Fatalf("source asked with port %d (asked: %v), want our port %d", port, ok, c.Port())
	}
}

// A private torrent (BEP 27) never asks the client's sources and sends no DHT port, even
// to a peer that sets the DHT bit; a public one sends its port and passes on the peer's.
func TestPrivateTorrentSkipsSources(t *testing.T) {
	for _, private := range []bool{false, true} {
		name := "public"
		if private {
			name = "private"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mi := torrentWith(t, dir, private)
			s := &staticSource{}
			ports := make(chan netip.AddrPort, 1)
			c := newClient(t, swarm.ClientConfig{
				Sources: []swarm.PeerSource{s.source()}, DHTPort: 4242,
				OnDHTPort: func(a netip.AddrPort) {
					select {
					case ports <- a:
					default:
					}
				},
			})
			addTorrent(t, c, mi, dir, true, swarm.TorrentConfig{Trackers: [][]string{}})

			var res wire.Reserved
			res.SetExtended(true)
			res.SetFast(true)
			res.SetDHT(true)
			conn := dialHandshake2(t, c.Addr(), mi.InfoHash, res)
			writeMsg(t, conn.c, wire.Message{ID: wire.Port, Port: 5151})
			// Read what the engine sends first: its piece set, PORT (when public), the
			// extension handshake.
			sawPort := uint16(0)
			conn.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for range 3 {
				m, err := conn.r.Read()
				if err != nil {
					break
				}
				if m.ID == wire.Port {
					sawPort = m.Port
				}
			}
			if !conn.hs.Reserved.DHT() == !private {
				t.Errorf("DHT bit in our handshake: %v", conn.hs.Reserved.DHT())
			}
			if private {
				// The reads above waited out their 2 s deadline (a private torrent sends
				// no PORT), time enough for a source goroutine to run had one started.
				if _, asked := s.wasAsked(mi.InfoHash); asked {
					t.Error("a private torrent asked a peer source")
				}
				if sawPort != 0 {
					t.Errorf("a private torrent sent its DHT port %d", sawPort)
				}
				select {
				case a := <-ports:
					t.Errorf("a private torrent passed on the DHT node %v", a)
				default:
				}
				return
			}
			if sawPort != 4242 {
				t.Errorf("sent DHT port %d, want 4242", sawPort)
			}
			select {
			case a := <-ports:
				if a.Port() != 5151 || a.Addr() != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("passed on DHT node %v, want 127.0.0.1:5151", a)
				}
			case <-time.After(10 * time.Second):
				t.Error("the peer's PORT message was not passed on")
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, asked := s.wasAsked(mi.InfoHash); asked {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("a public torrent did not ask its sources")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// torrentWith creates a small torrent (private or not) with its data under dir.
func torrentWith(t *testing.T, dir string, private bool) *metainfo.MetaInfo {
	t.Helper()
	mi, _ := makeTorrent(t, dir, "p", map[string]int64{"a": 100 << 10}, 32<<10)
	if !private {
		return mi
	}
	mi2, _, err := metainfo.Create(context.Background(), dir+"/p", metainfo.CreateOptions{PieceLength: 32 << 10, NoDate: true, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	return mi2
}

// Our extension handshake tells the peer how we see it (yourip) and our external address
// when the client knows it (ipv4), so peers behind NATs learn theirs and know ours.
func TestExtHandshakeAddresses(t *testing.T) {
	dir := t.TempDir()
	mi := torrentWith(t, dir, false)
	c := newClient(t, swarm.ClientConfig{})
	c.SetExternalIP(netip.MustParseAddr("203.0.113.9"))
	addTorrent(t, c, mi, dir, true, swarm.TorrentConfig{Trackers: [][]string{}})
	var res wire.Reserved
	res.SetExtended(true)
	conn := dialHandshake2(t, c.Addr(), mi.InfoHash, res)
	conn.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := conn.r.Read()
		if err != nil {
			t.Fatalf("no extension handshake: %v", err)
		}
		if m.ID != wire.Extended || m.ExtID != 0 {
			continue
		}
		h, err := wire.ParseExtHandshake(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := netip.AddrFromSlice(h.YourIP); got != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("yourip %v, want 127.0.0.1", got)
		}
		if got, _ := netip.AddrFromSlice(h.IPv4); got != netip.MustParseAddr("203.0.113.9") {
			t.Errorf("ipv4 %v, want the external 203.0.113.9", got)
		}
		return
	}
}
