package swarm_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// TestReserveWhileReading: while a reader has wants (or, for a torrent mounted for
// reading, all along), one of three seeders is kept for due blocks (flag R in the peers
// table); the background download goes on through the others and the torrent completes.
func TestReserveWhileReading(t *testing.T) {
	for _, forReaders := range []bool{false, true} {
		t.Run(map[bool]string{false: "reader", true: "for readers"}[forReaders], func(t *testing.T) {
			src := t.TempDir()
			mi, _ := makeTorrent(t, src, "res", map[string]int64{"a.bin": 32 << 20}, 64<<10)
			seeds := limitedSeeders(t, mi, src, 1<<20, 1<<20, 1<<20)
			c := newClient(t, swarm.ClientConfig{})
			tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: seeds, ForReaders: forReaders})
			testutil.WaitFor(t, 30*time.Second, "three seeders", func() bool { return tr.Stats().Peers == 3 })
			reserved := func() int { return reservedPeers(tr) }
			if !forReaders {
				// No reader yet: every seeder works for the background download, through
				// the first 4 MiB (more than a second of ticks at 3 MiB/s).
				testutil.WaitFor(t, 30*time.Second, "4 MiB downloaded with no peer reserved", func() bool {
					if n := reserved(); n != 0 {
						t.Fatalf("%d peers reserved with no reader about", n)
					}
					return tr.Stats().Downloaded >= 4<<20
				})
				last := mi.Info.NumPieces() - 1
				tr.SetWants(1, last, []time.Time{time.Now()}) // a reader wants the last piece, now
			}
			testutil.WaitFor(t, 30*time.Second, "a seeder reserved for due blocks", func() bool { return reserved() == 1 })
			waitComplete(t, tr, 60*time.Second)
			tr.SetWants(1, 0, nil)
		})
	}
}

// reservedPeers counts the peers flagged R (reserved for due blocks) in tr's peer table.
func reservedPeers(tr *swarm.Torrent) int {
	n := 0
	for _, p := range tr.Peers(context.Background()) {
		if strings.Contains(p.Flags, "R") {
			n++
		}
	}
	return n
}

// A mounted torrent (ForReaders) reserves a peer as soon as enough peers have unchoked it,
// with no tick and no read yet: the reserved peer's quota is then untouched by the
// background download when the first read comes (a qBittorrent seeder's first quota went
// to the background, and a mount's first read waited for its next 500 ms tick).
func TestMountReservesOnUnchoke(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	var peers []netip.AddrPort
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 61+i)
		// Slow seeders: the download must not be over before the check.
		s := newClient(t, swarm.ClientConfig{ListenAddr: ip + ":0", UploadLimit: 64 << 10})
		addTorrent(t, s, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		peers = append(peers, netip.AddrPortFrom(netip.MustParseAddr(ip), s.Port()))
	}
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.64:0"})
	cfg := swarm.TorrentConfig{Trackers: [][]string{}, Peers: peers, ForReaders: true}
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.WithTickEvery(cfg, time.Hour))
	testutil.WaitFor(t, 15*time.Second, "a peer reserved with no tick", func() bool { return reservedPeers(tr) == 1 })
}

// reservedAddr is the address of the peer reserved for due blocks, "" if none.
func reservedAddr(tr *swarm.Torrent) string {
	for _, p := range tr.Peers(context.Background()) {
		if strings.Contains(p.Flags, "R") {
			return p.Addr
		}
	}
	return ""
}

// A mount's peer reserved as peers unchoked, before any rate was known, is chosen again by
// rate once the rates measured show the peers differ; where they are alike it is kept (its
// seeder's quota bank has grown since the unchoke). Either way the reserved peer ends up
// the fastest, also when the blind choice was the fastest and its rate, measured while
// reserved, is only the trickle.
func TestMountReserveKeptAmongAlikes(t *testing.T) {
	for name, limits := range map[string][]int64{
		"alike":  {256 << 10, 256 << 10, 256 << 10},
		"differ": {128 << 10, 128 << 10, 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			mi, _ := makeTorrent(t, src, "res", map[string]int64{"a.bin": 24 << 20}, 64<<10)
			peers := limitedSeeders(t, mi, src, limits...)
			fastest := peers[len(peers)-1].String()
			c := newClient(t, swarm.ClientConfig{})
			tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: peers, ForReaders: true})
			var first string
			testutil.WaitFor(t, 15*time.Second, "a peer reserved", func() bool { first = reservedAddr(tr); return first != "" })
			// The tick that measures the others' rates keeps or changes the choice, after
			// the rates, in the same turn of the loop that answers Peers.
			testutil.WaitFor(t, 15*time.Second, "two other peers' rates measured", func() bool {
				n := 0
				for _, p := range tr.Peers(context.Background()) {
					if !strings.Contains(p.Flags, "R") && p.DownRate > 0 {
						n++
					}
				}
				return n >= 2
			})
			switch got := reservedAddr(tr); {
			case name == "alike" && got != first:
				t.Errorf("reserved %s at the unchoke, then %s: a blind choice among alike peers was dropped", first, got)
			case name == "differ" && got != fastest:
				t.Errorf("reserved %s (at the unchoke %s), want the fastest, %s", got, first, fastest)
			}
		})
	}
}

// A mount's peers are paced from the start (it is read soon after it is made), and again
// from a read's first wants after the mount sat unread: not from the tick after. A seek
// that opens, reads and closes between two ticks (a second apart) left them unpaced once a
// peer was reserved, and the background download spent the seeders' quota the next seek
// needed (a qBittorrent seeder sent us 116 background blocks in 20 ms just before a 4 MiB
// seek, which then took 0.8 s). The pacing lingers after the reader closes.
func TestPacedFromTheFirstWants(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "pace", map[string]int64{"a.bin": 8 << 20}, 64<<10)
	// Slow seeders: the download must not be over before the check.
	peers := limitedSeeders(t, mi, src, 64<<10, 64<<10, 64<<10)
	c := newClient(t, swarm.ClientConfig{})
	cfg := swarm.TorrentConfig{Trackers: [][]string{}, Peers: peers, ForReaders: true}
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.WithTickEvery(cfg, time.Hour))
	if !tr.Paced() {
		t.Fatal("a mount is not paced from the start")
	}
	testutil.WaitFor(t, 15*time.Second, "a peer reserved", func() bool { return reservedAddr(tr) != "" })
	tr.Unread() // as after reserveLinger with no reader
	if tr.Paced() {
		t.Fatal("paced with no reader about")
	}
	tr.SetWants(0, 100, []time.Time{time.Now(), time.Now().Add(time.Second)})
	tr.SetWants(0, 0, nil) // closed
	if !tr.Paced() {
		t.Fatal("not paced after a read's wants came and went between two ticks")
	}
}

// limitedSeeders starts a seeder of mi from src for each upload limit and returns their
// addresses.
func limitedSeeders(t *testing.T, mi *metainfo.MetaInfo, src string, limits ...int64) []netip.AddrPort {
	t.Helper()
	var peers []netip.AddrPort
	for _, lim := range limits {
		s := newClient(t, swarm.ClientConfig{UploadLimit: lim})
		addTorrent(t, s, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		peers = append(peers, s.Addr().(*net.TCPAddr).AddrPort())
	}
	return peers
}
