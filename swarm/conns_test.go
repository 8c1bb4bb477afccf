package swarm_test

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// The client's bound on connections holds across its torrents, incoming ones included,
// and every connection gives its room back when its torrent stops.
func TestClientConnectionBound(t *testing.T) {
	src := t.TempDir()
	miA, _ := makeTorrent(t, src, "a", multiFile, 32<<10)
	miB, _ := makeTorrent(t, src, "b", map[string]int64{"b.bin": 1 << 20}, 32<<10)
	var seeders []netip.AddrPort
	for i := range 3 {
		s := newClient(t, swarm.ClientConfig{ListenAddr: netip.AddrFrom4([4]byte{127, 0, 0, byte(71 + i)}).String() + ":0"})
		addTorrent(t, s, miA, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		addTorrent(t, s, miB, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		seeders = append(seeders, s.Addr().(*net.TCPAddr).AddrPort())
	}
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.70:0", MaxConns: 2})
	var over atomic.Int32
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n := c.Conns(); n > 2 {
				over.Store(int32(n))
			}
		}
	}()
	ta := addTorrent(t, c, miA, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: seeders})
	tb := addTorrent(t, c, miB, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: seeders})
	waitComplete(t, ta, 60*time.Second)
	// A peer dialing in while the room is taken is turned away.
	third := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.74:0"})
	addTorrent(t, third, miA, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{c.Addr().(*net.TCPAddr).AddrPort()}})
	time.Sleep(500 * time.Millisecond)
	if n := ta.Stats().Peers + tb.Stats().Peers; n > 2 {
		t.Errorf("%d peers across both torrents, bound 2", n)
	}
	close(stop)
	<-sampled
	if n := over.Load(); n != 0 {
		t.Errorf("the client held %d connections, bound 2", n)
	}
	ta.Close()
	tb.Close()
	testutil.WaitFor(t, 5*time.Second, "every connection's room given back", func() bool { return c.Conns() == 0 })
}

// Two clients that know each other's address: each dials the other, one connection
// survives, and the one that finds itself a duplicate does not redial at once, over and
// over (it did: thousands of dials and drops a second).
func TestDuplicateConnectionNotRedialledInALoop(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "a", multiFile, 32<<10)
	logA, recA := recordLog(t)
	a := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.75:0", Log: logA})
	logB, recB := recordLog(t)
	b := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.76:0", Log: logB})
	addTorrent(t, a, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{b.Addr().(*net.TCPAddr).AddrPort()}})
	tb := addTorrent(t, b, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{a.Addr().(*net.TCPAddr).AddrPort()}})
	waitComplete(t, tb, 30*time.Second)
	time.Sleep(3 * time.Second)
	if n := recA.count("duplicate connection") + recB.count("duplicate connection"); n > 4 {
		t.Errorf("%d duplicate connections dropped in a few seconds: the loser redials in a loop", n)
	}
	if tb.Stats().Peers != 1 {
		t.Errorf("%d peers, want the one connection kept", tb.Stats().Peers)
	}
}

// dupPeer is a fake peer at ip that answers the engine's dials, and tells when the first
// connection it answered is up and when it ends.
type dupPeer struct {
	addr               netip.AddrPort
	shook              atomic.Int32 // connections whose handshake it answered
	first, firstClosed chan struct{}
}

func newDupPeer(t *testing.T, ip string, ih metainfo.Hash) *dupPeer {
	t.Helper()
	if ours := wire.NewPeerID("-TF0001-"); bytes.Compare(fakePeerID[:], ours[:]) <= 0 {
		t.Fatal("the fake peer's id must be the larger, so that the engine keeps the peer's dial in a race")
	}
	d := &dupPeer{first: make(chan struct{}), firstClosed: make(chan struct{})}
	var conns atomic.Int32
	ln := acceptPeers(t, ip, &conns, func(c net.Conn) {
		if !answerHandshake(c, ih, wire.Reserved{}) {
			return // the engine's encrypted first try: it falls back to plaintext
		}
		n := d.shook.Add(1)
		if n == 1 {
			close(d.first)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		if n == 1 {
			close(d.firstClosed)
		}
	})
	d.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	return d
}

func (d *dupPeer) waitFirst(t *testing.T) {
	t.Helper()
	select {
	case <-d.first:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine never dialed the peer")
	}
}

// Both sides dial at once, the engine keeps the peer's dial (the larger peer ID's), and
// the peer keeps the first connection instead and hangs up its own: both are gone, and
// the engine redials at once instead of after redialAfter (it lost aria2 seeders of the
// stream lab for five seconds this way).
func TestDuplicateKeptByThePeerRedialled(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "a", multiFile, 32<<10)
	d := newDupPeer(t, "127.0.0.77", mi.InfoHash)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.78:0"})
	cfg := swarm.WithDuplicateRace(swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{d.addr}}, 10*time.Second)
	addTorrent(t, c, mi, t.TempDir(), false, cfg)
	d.waitFirst(t)
	rc := dialHandshakeAs(t, c.Addr(), mi.InfoHash, wire.Reserved{}, fakePeerID)
	select {
	case <-d.firstClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine kept both connections")
	}
	rc.c.Close() // the peer keeps the first, which is gone: now neither is left
	testutil.WaitFor(t, 5*time.Second, "the engine to dial the peer again", func() bool { return d.shook.Load() >= 2 })
}

// A peer that dials a while after the engine's connection with it is up did not know it
// was us: the engine keeps the connection that is up, whatever the peer IDs, and hangs up
// the new one (aria2 does the same from its side).
func TestDuplicateLateKeepsTheFirst(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "a", multiFile, 32<<10)
	d := newDupPeer(t, "127.0.0.79", mi.InfoHash)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.80:0"})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{d.addr}})
	d.waitFirst(t)
	testutil.WaitFor(t, 5*time.Second, "the engine to take the connection", func() bool { return tr.Stats().Peers == 1 })
	time.Sleep(time.Second) // well past a race
	rc := dialHandshakeAs(t, c.Addr(), mi.InfoHash, wire.Reserved{}, fakePeerID)
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	expectHangUp(t, rc.r, "the engine kept the late duplicate open")
	select {
	case <-d.firstClosed:
		t.Fatal("the engine dropped the connection that was up for the late one")
	case <-time.After(500 * time.Millisecond):
	}
	if n := tr.Stats().Peers; n != 1 {
		t.Errorf("%d peers, want the first connection", n)
	}
}
