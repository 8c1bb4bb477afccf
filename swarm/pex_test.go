package swarm_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// Peer exchange (BEP 11) between our own clients and with fake peers. Every client has its
// own loopback address, as with real peers.

func addrOf(c *swarm.Client) netip.AddrPort { return c.Addr().(*net.TCPAddr).AddrPort() }

// TestPexLearnsThirdPeer: A knows only B, B is connected to C; B's ut_pex tells A about C
// and A connects to it. A does not listen, so C can only have A as a peer by A dialing it.
// B uploads slowly, so A is still downloading when it learns C (a complete torrent does not
// dial the seeds it learns of).
func TestPexLearnsThirdPeer(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	noTrackers := swarm.TorrentConfig{Trackers: [][]string{}}

	cc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.31:0"})
	tc := addTorrent(t, cc, mi, src, true, noTrackers)
	bc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.32:0", UploadLimit: 16 << 10})
	tb := addTorrent(t, bc, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{addrOf(cc)}})
	testutil.WaitFor(t, 30*time.Second, "B did not connect to C", func() bool {
		return tb.Stats().Peers == 1 && tc.Stats().Peers == 1
	})

	ac, err := swarm.NewClient(swarm.ClientConfig{DialAddr: netip.MustParseAddr("127.0.0.33"), Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ac.Close() })
	out := t.TempDir()
	ta := addTorrent(t, ac, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{addrOf(bc)}})
	testutil.WaitFor(t, 60*time.Second, "A did not connect to C", func() bool {
		return ta.Stats().Peers == 2 && tc.Stats().Peers == 2
	})
	waitComplete(t, ta, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// privateTorrent writes files under dir/name and makes a private torrent of them.
func privateTorrent(t *testing.T, dir, name string, files map[string]int64) *metainfo.MetaInfo {
	t.Helper()
	root := filepath.Join(dir, name)
	testpeers.WriteFiles(t, root, files, 42)
	mi, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: 64 << 10, NoDate: true, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name+".torrent"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi
}

// pexConn is a raw connection to our engine that speaks the extension protocol.
type pexConn struct {
	c      net.Conn
	r      *wire.Reader
	theirs wire.ExtHandshake
}

// The ids a fake peer asks ut_pex and ut_metadata under.
const (
	fakePexID      = 9
	fakeMetadataID = 3
)

// dialPex connects to our engine's torrent as a fake peer that takes ut_pex, and reads the
// engine's extension handshake.
func dialPex(t *testing.T, addr net.Addr, ih metainfo.Hash) *pexConn {
	t.Helper()
	var res wire.Reserved
	res.SetExtended(true)
	c := dialHandshake(t, addr, ih, res)
	eh, err := wire.ExtHandshake{M: map[string]int{wire.ExtPex: fakePexID, wire.ExtMetadata: fakeMetadataID}, V: "fake"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	writeMsg(t, c, wire.Message{ID: wire.Extended, Payload: eh})
	pc := &pexConn{c: c, r: wire.NewReader(c, 0)}
	for {
		m := readMsg(t, pc.r)
		if m.ID == wire.Extended && m.ExtID == 0 {
			if pc.theirs, err = wire.ParseExtHandshake(m.Payload); err != nil {
				t.Fatal(err)
			}
			return pc
		}
	}
}

// nextPex reads until a ut_pex message or the deadline; ok is false at the deadline.
func (pc *pexConn) nextPex(t *testing.T, d time.Duration) (m wire.PexMessage, ok bool) {
	t.Helper()
	pc.c.SetDeadline(time.Now().Add(d))
	for {
		msg, err := pc.r.Read()
		if err != nil {
			if hungUp(err) {
				t.Fatalf("engine hung up: %v", err)
			}
			return wire.PexMessage{}, false
		}
		if msg.ID != wire.Extended || msg.ExtID != fakePexID {
			continue
		}
		m, err := wire.ParsePexMessage(msg.Payload)
		if err != nil {
			t.Fatalf("engine sent a bad ut_pex message: %v", err)
		}
		return m, true
	}
}

// TestPexSentUnlessPrivate: a seeder with one other peer (ours, which dialed it) tells a
// fake peer about it in its first ut_pex message, with the listen port the other peer's
// handshake gave, and that it is gone in a later one once it left; a private torrent
// advertises no ut_pex, sends none and ignores what it is sent.
func TestPexSentUnlessPrivate(t *testing.T) {
	for _, private := range []bool{false, true} {
		name := "public"
		if private {
			name = "private"
		}
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			var mi *metainfo.MetaInfo
			if private {
				mi = privateTorrent(t, src, "multi", multiFile)
			} else {
				mi, _ = makeTorrent(t, src, "multi", multiFile, 64<<10)
			}
			sc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.34:0"})
			// A message every second rather than every minute, to see the drop soon.
			ts := addTorrent(t, sc, mi, src, true, swarm.WithPexInterval(swarm.TorrentConfig{Trackers: [][]string{}}, time.Second))
			oc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.35:0"})
			addTorrent(t, oc, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{addrOf(sc)}})
			testutil.WaitFor(t, 30*time.Second, "the other peer did not connect", func() bool { return ts.Stats().Peers == 1 })

			pc := dialPex(t, sc.Addr(), mi.InfoHash)
			id := pc.theirs.M[wire.ExtPex]
			if private {
				if id != 0 {
					t.Fatalf("private torrent advertises ut_pex as %d", id)
				}
				// It must ignore a ut_pex message under any id.
				for _, id := range []uint8{2, 9} {
					b, _ := wire.PexMessage{Added: []wire.PexPeer{{Addr: netip.MustParseAddrPort("127.0.0.78:1000")}}}.Encode()
					writeMsg(t, pc.c, wire.Message{ID: wire.Extended, ExtID: id, Payload: b})
				}
				// Well past the first message's delay of a public torrent.
				if m, ok := pc.nextPex(t, 10*time.Second); ok {
					t.Fatalf("private torrent sent ut_pex %+v", m)
				}
				if n := ts.NumCandidates(); n != 0 {
					t.Errorf("private torrent has %d candidates after a ut_pex message, want 0", n)
				}
				return
			}
			if id == 0 {
				t.Fatalf("no ut_pex in the extension handshake %+v", pc.theirs.M)
			}
			m, ok := pc.nextPex(t, 30*time.Second)
			if !ok {
				t.Fatal("no ut_pex message within 30s")
			}
			// It may be a seed by now; it dialed us, so we do not flag it reachable.
			if len(m.Added) != 1 || m.Added[0].Addr != addrOf(oc) || m.Added[0].Flags&^wire.PexSeed != 0 || len(m.Dropped) != 0 {
				t.Fatalf("ut_pex %+v; want only %v added, flagged at most seed", m, addrOf(oc))
			}
			oc.Close()
			if m, ok = pc.nextPex(t, 30*time.Second); !ok {
				t.Fatal("no second ut_pex message within 30s of the other peer leaving")
			}
			if len(m.Added) != 0 || len(m.Dropped) != 1 || m.Dropped[0] != addrOf(oc) {
				t.Fatalf("ut_pex %+v; want only %v dropped", m, addrOf(oc))
			}
		})
	}
}

// TestPexHostile: a fake peer sends oversized and flooding ut_pex messages, another one
// garbage. The oversized one is ignored, only 50 peers of each family of the first are kept,
// the flood is ignored, garbage costs the connection, and the torrent goes on.
func TestPexHostile(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	sc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.36:0"})
	ts := addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	pc := dialPex(t, sc.Addr(), mi.InfoHash)
	id := uint8(pc.theirs.M[wire.ExtPex])
	if id == 0 {
		t.Fatal("no ut_pex in the extension handshake")
	}
	// Addresses where nothing listens: dials to them fail at once, on loopback.
	peers := func(n, port int) []wire.PexPeer {
		var ps []wire.PexPeer
		for i := range n {
			ps = append(ps, wire.PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 77}), uint16(port+i))},
				wire.PexPeer{Addr: netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port+i))})
		}
		return ps
	}
	send := func(pc *pexConn, payload []byte) {
		t.Helper()
		pc.c.SetDeadline(time.Now().Add(20 * time.Second))
		writeMsg(t, pc.c, wire.Message{ID: wire.Extended, ExtID: id, Payload: payload})
	}
	huge, _ := wire.PexMessage{Added: peers(2000, 10000)}.Encode()
	send(pc, huge)
	big, _ := wire.PexMessage{Added: peers(1000, 20000)}.Encode()
	send(pc, big)
	for k := range 20 {
		flood, _ := wire.PexMessage{Added: peers(50, 30000+50*k)}.Encode()
		send(pc, flood)
	}
	// The loop handles a peer's messages in order: once it answers a ut_metadata request
	// sent after the flood, it has read the flood.
	req, _ := wire.MetadataMessage{Type: wire.MetadataRequest}.AppendTo(nil)
	pc.c.SetDeadline(time.Now().Add(20 * time.Second))
	writeMsg(t, pc.c, wire.Message{ID: wire.Extended, ExtID: uint8(pc.theirs.M[wire.ExtMetadata]), Payload: req})
	for {
		m, err := pc.r.Read()
		if err != nil {
			t.Fatalf("the engine dropped the peer that flooded ut_pex: %v", err)
		}
		if m.ID == wire.Extended && m.ExtID == fakeMetadataID {
			break
		}
	}
	if n := ts.NumCandidates(); n != 2*wire.MaxPexPeers {
		t.Fatalf("%d candidates, want %d: only the first message's first peers", n, 2*wire.MaxPexPeers)
	}

	// Garbage is read (a first message from this peer) and ends the connection. The
	// engine takes one connection per peer id: the first fake leaves first.
	// (Stats are refreshed each second: see it counted before it is gone.)
	testutil.WaitFor(t, 20*time.Second, "the first fake peer is not counted", func() bool { return ts.Stats().Peers == 1 })
	pc.c.Close()
	testutil.WaitFor(t, 20*time.Second, "the first fake peer's connection stayed", func() bool { return ts.Stats().Peers == 0 })
	bad := dialPex(t, sc.Addr(), mi.InfoHash)
	send(bad, []byte("not bencode at all"+strings.Repeat("!", 100)))
	bad.c.SetDeadline(time.Now().Add(20 * time.Second))
	expectHangUp(t, bad.r, "the engine kept a peer that sent a ut_pex message that is no dictionary")
	if n := ts.NumCandidates(); n != 2*wire.MaxPexPeers {
		t.Errorf("%d candidates, want %d: only the first message's first peers", n, 2*wire.MaxPexPeers)
	}
	// Still serving: a new peer gets its handshake answered.
	dialPex(t, sc.Addr(), mi.InfoHash)
}
