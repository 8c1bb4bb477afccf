package swarm_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// TestPexLearnedByQBittorrent: our ut_pex tells a real client (qBittorrent, libtorrent 2.0)
// about a peer it did not know, and it connects to it. Our seeder S sends ut_pex every 2 s;
// our leecher C knows only S and connects to it; qBittorrent, with PEX on and no tracker,
// DHT or LSD, is given only S through its WebUI. S's ut_pex names C (by the listen port of
// C's extension handshake) and qBittorrent dials it: it lists C with the PEX source flag
// X and not as incoming, and C has a second peer.
//
// C has PEX off, so it never hears of qBittorrent and cannot dial it (two peers dialing each
// other at once may both drop the pair as duplicates), and fetches nothing by itself
// (NoBackground): a second peer at C is one that dialed it. S uploads slowly, so
// qBittorrent is still downloading while it is connected to S: libtorrent drops a
// connection between two seeds before any ut_pex could arrive.
func TestPexLearnedByQBittorrent(t *testing.T) {
	// Mostly waiting on qBittorrent: run alongside the others.
	t.Parallel()
	testutil.Need(t, "qbittorrent-nox")
	src := t.TempDir()
	mi, torrent := makeTorrent(t, src, "multi", multiFile, 64<<10)
	const sIP, cIP, qIP = "127.0.0.51", "127.0.0.52", "127.0.0.53"

	sc := newClient(t, swarm.ClientConfig{ListenAddr: sIP + ":0", UploadLimit: 16 << 10})
	ts := addTorrent(t, sc, mi, src, true, swarm.WithPexInterval(swarm.TorrentConfig{Trackers: [][]string{}}, 2*time.Second))
	cc := newClient(t, swarm.ClientConfig{ListenAddr: cIP + ":0"})
	tc := addTorrent(t, cc, mi, t.TempDir(), false, swarm.TorrentConfig{
		Trackers: [][]string{}, Peers: []netip.AddrPort{addrOf(sc)}, NoBackground: true, NoPEX: true,
	})
	testutil.WaitFor(t, 30*time.Second, "C did not connect to S", func() bool {
		return ts.Stats().Peers == 1 && tc.Stats().Peers == 1
	})

	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: qIP, PEX: true})
	q.AddTorrent(t, torrent, t.TempDir())
	hash := mi.InfoHash.HexString()
	exited := func() {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
	}
	// The torrent is unknown to the WebUI until qBittorrent has loaded it.
	testutil.WaitFor(t, 30*time.Second, "qBittorrent did not take S as a peer", func() bool {
		exited()
		return qbit.AddPeers(q.API, hash, addrOf(sc).String()) == nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			peers, err := qbit.Peers(q.API, hash)
			t.Logf("qBittorrent's peers: %s (%v)", describePeers(peers), err)
		}
	})
	testutil.WaitFor(t, 30*time.Second, "qBittorrent did not connect to S", func() bool {
		exited()
		return ts.Stats().Peers == 2
	})

	// S's first ut_pex to qBittorrent goes 3 s after its extension handshake and names C
	// already; libtorrent dials the peers it learns at its next connection round.
	cAddr := addrOf(cc).String()
	start := time.Now()
	var peers map[string]qbit.Peer
	var err error
	testutil.WaitFor(t, 60*time.Second, "qBittorrent did not connect to C through S's PEX", func() bool {
		exited()
		peers, err = qbit.Peers(q.API, hash)
		_, ok := peers[cAddr]
		return err == nil && ok && tc.Stats().Peers == 2
	})
	p := peers[cAddr]
	t.Logf("qBittorrent connected to C %v after connecting to S; its peers: %s", time.Since(start).Round(100*time.Millisecond), describePeers(peers))
	if !p.HasFlag("X") {
		t.Errorf("qBittorrent lists C (%s) with flags %q, want the PEX source flag X", cAddr, p.Flags)
	}
	if p.HasFlag("I") {
		t.Errorf("qBittorrent lists C (%s) as incoming (flags %q), want a connection it opened", cAddr, p.Flags)
	}
	if p.IP != cIP {
		t.Errorf("qBittorrent lists C at IP %q, want %s", p.IP, cIP)
	}
}

// describePeers is a stable one-line summary of qBittorrent's peers for the log.
func describePeers(peers map[string]qbit.Peer) string {
	var s []string
	for a, p := range peers {
		s = append(s, a+" ["+p.Flags+"] "+p.Client)
	}
	slices.Sort(s)
	return strings.Join(s, "; ")
}
