package swarm_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// checkFetchedHybrid fails unless got is hybrid mi with both info-hashes and, when layers,
// all its piece layers.
func checkFetchedHybrid(t *testing.T, got, mi *metainfo.MetaInfo, layers bool) {
	t.Helper()
	if !bytes.Equal(got.InfoBytes, mi.InfoBytes) || got.InfoHash != mi.InfoHash || got.InfoHashV2 != mi.InfoHashV2 {
		t.Fatalf("fetched v1 %s v2 %s, want v1 %s v2 %s", got.InfoHash, got.InfoHashV2, mi.InfoHash, mi.InfoHashV2)
	}
	if err := got.CheckVerifiable(); err != nil {
		t.Fatal(err)
	}
	if !layers {
		if got.PieceLayers != nil {
			t.Fatalf("%d piece layers, want none", len(got.PieceLayers))
		}
		return
	}
	if len(mi.PieceLayers) == 0 || len(got.PieceLayers) != len(mi.PieceLayers) {
		t.Fatalf("%d piece layers, want %d", len(got.PieceLayers), len(mi.PieceLayers))
	}
	for root, l := range mi.PieceLayers {
		if !bytes.Equal(got.PieceLayers[root], l) {
			t.Fatalf("piece layer of root %s differs", root)
		}
	}
}

// A hybrid's magnet link with its v1 hash (alone, or beside the v2 one) fetched from our
// seeders gives a hybrid: both info-hashes and the piece layers, asked over connections
// the fetch dials again by the v2 hash. The torrent made from it speaks v2 to its seeder,
// and a 16 KiB read at a cold offset of a 4 MiB piece from a seeder sending 1 MiB/s is
// released by verified blocks, its piece still incomplete.
func TestHybridMagnetRunsAsHybrid(t *testing.T) {
	const piece = filmPiece
	src, mi, want := filmHybrid(t, 17)
	var seeders []netip.AddrPort
	for range 2 {
		sc := newClient(t, swarm.ClientConfig{UploadLimit: 1 << 20})
		addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		seeders = append(seeders, sc.Addr().(*net.TCPAddr).AddrPort())
	}
	for _, tc := range []struct {
		name string
		m    *metainfo.Magnet
	}{
		{"btih", &metainfo.Magnet{InfoHash: mi.InfoHash}},
		{"btih and btmh", &metainfo.Magnet{InfoHash: mi.InfoHash, InfoHashV2: mi.InfoHashV2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.2:0"})
			got, err := fetch(t, c, tc.m, 30*time.Second, seeders...)
			if err != nil {
				t.Fatal(err)
			}
			checkFetchedHybrid(t, got, mi, true)
			tr := addTorrent(t, c, got, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
				NoBackground: true, CacheBytes: 64 << 20, Peers: seeders[:1]})
			if tr.InfoHash() != mi.InfoHash {
				t.Fatalf("torrent known as %s", tr.InfoHash())
			}
			// The seeder answers our v2 offer with the v2 hash, which the dial takes only
			// for a torrent registered under both.
			testutil.WaitFor(t, 10*time.Second, "a v2 connection", func() bool { return tr.NumV2Peers() == 1 })
			checkReleasedReads(t, tr, want, piece, []int64{piece + piece/2 + 777, 2*piece + 100<<10}) // film.bin is the first file
		})
	}
}

// A hybrid's btih link whose only peer gives the info dictionary but takes no connection
// named by the v2 hash (a v1-only client of the hybrid): the fetch returns the hybrid with
// both info-hashes and no piece layers once the peer failed twice, without waiting out its
// bound for layers (the peer is dialed three times: metadata, two tries for layers), and
// the torrent from it downloads, verified by SHA-1.
func TestHybridMagnetWithoutLayers(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 16<<10)
	v1only := startMetaPeer(t, "127.0.0.70", mi.InfoHash, len(mi.InfoBytes), honest(mi.InfoBytes))
	c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionOff})
	got, err := fetch(t, c, &metainfo.Magnet{InfoHash: mi.InfoHash}, 30*time.Second, v1only.addr())
	if err != nil {
		t.Fatal(err)
	}
	checkFetchedHybrid(t, got, mi, false)
	if n := v1only.conns.Load(); n != 3 {
		t.Errorf("the peer was dialed %d times, want 3", n)
	}
	sc := newClient(t, swarm.ClientConfig{})
	addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	out := t.TempDir()
	tr := addTorrent(t, c, got, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{sc.Addr().(*net.TCPAddr).AddrPort()}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "hyb"), filepath.Join(out, "hyb"))
}

// libtorrent 2.0 seeds a hybrid made by metainfo.Create; we fetch it with its btih link
// alone (MSE preferred, so the connection dialed again for the layers is keyed by the v2
// hash, the only one libtorrent upgrades): libtorrent gives the info dictionary and the
// piece layers, and we download the data from it over a v2 connection.
func TestHybridMagnetFromLibtorrent(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, torrent := makeHybrid(t, src, 16<<10)
	port := testpeers.FreePort(t, "127.0.0.71")
	p := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.71", Port: port, Torrent: torrent, SaveDir: src, Seed: true})
	testpeers.LibtorrentWait(t, p, "seeding", 60*time.Second)
	peer := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.71"), uint16(port))
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, &metainfo.Magnet{InfoHash: mi.InfoHash}, 60*time.Second, peer)
	if err != nil {
		t.Fatalf("%v\nlibtorrent:\n%s", err, p.Output())
	}
	checkFetchedHybrid(t, got, mi, true)
	out := t.TempDir()
	tr := addTorrent(t, c, got, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{peer}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "hyb"), filepath.Join(out, "hyb"))
	// A piece of one block: its hash is the piece layer's entry, which the torrent holds.
	if hs, err := tr.BlockHashes(context.Background(), 0); err != nil || len(hs) != 1 || hs[0] != wantBlockHashes(t, mi, src, 0)[0] {
		t.Errorf("block hashes of piece 0: %v, %v", hs, err)
	}
}
