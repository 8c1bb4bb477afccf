package swarm_test

import (
	"bytes"
	"context"
	"errors"
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

// v2OnlyFiles are hybridFiles and, with 16 KiB pieces, a file whose piece layer (600
// hashes) takes two hash requests of up to 512 to fetch.
func v2OnlyFiles(pieceLen int64) map[string]int64 {
	files := map[string]int64{}
	for k, v := range hybridFiles {
		files[k] = v
	}
	if pieceLen == 16<<10 {
		files["huge.bin"] = 600*pieceLen - 5
	}
	return files
}

// makeV2Only writes v2OnlyFiles under dir/v2o and makes a v2-only torrent of them.
func makeV2Only(t *testing.T, dir string, pieceLen int64) (*metainfo.MetaInfo, string) {
	t.Helper()
	root := filepath.Join(dir, "v2o")
	testpeers.WriteFiles(t, root, v2OnlyFiles(pieceLen), 53)
	mi, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: pieceLen, NoDate: true, Version: metainfo.V2})
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Version != metainfo.V2 || mi.InfoHash != (metainfo.Hash{}) {
		t.Fatalf("made a %s torrent", mi.Info.Version)
	}
	path := filepath.Join(t.TempDir(), "v2o.torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, path
}

// A v2-only torrent goes from our seeder to our downloader: both know it by its truncated
// v2 info-hash (MSE preferred: the encryption handshake names it by that hash too; the
// seeder requires RC4 so that the connection shows it went through MSE), every connection
// is a v2 one, and every piece passes its merkle check.
func TestV2OnlyDownloadFromOurSeeder(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeV2Only(t, src, 64<<10)
	seeder := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionRequire})
	st := addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	if st.InfoHash() != mi.InfoHashV2.Truncate() || !st.Stats().Complete {
		t.Fatalf("seeder: info-hash %s, complete %v", st.InfoHash(), st.Stats().Complete)
	}
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}})
	waitComplete(t, tr, 30*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "v2o"), filepath.Join(out, "v2o"))
	if _, err := os.Stat(filepath.Join(out, "v2o", ".pad")); err == nil {
		t.Error("pad files were written to disk")
	}
	if n := tr.NumV2Peers(); n != 1 {
		t.Errorf("%d v2 peers, want the seeder", n)
	}
	if s := tr.Stats(); s.Banned != 0 || s.Encrypted != 1 {
		t.Errorf("banned %d, encrypted %d connections", s.Banned, s.Encrypted)
	}
}

// A peer of a v2-only torrent that sends corrupt data is caught by the pieces' merkle check
// (the live path: pieces verified as they complete), struck and banned; the download
// completes from an honest seeder.
func TestV2OnlyCorruptPeerIsBanned(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeV2Only(t, src, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	bad := startFakePeer(t, mi, func(fp *fakePeer, c net.Conn, r *wire.Reader) {
		fp.serveBlocks(c, r, func(m wire.Message) []byte { return bytes.Repeat([]byte{0xAA}, int(m.Length)) })
	})
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{bad.addr()}})
	testutil.WaitFor(t, 10*time.Second, "blocks from the corrupt peer", func() bool { return bad.served.Load() > 0 })
	tr.AddPeers(seeder.Addr().(*net.TCPAddr).AddrPort())
	waitComplete(t, tr, 30*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "v2o"), filepath.Join(out, "v2o"))
	if s := tr.Stats(); s.Banned != 1 {
		t.Errorf("banned %d peers, want the corrupt one", s.Banned)
	}
}

// checkFetchedV2 checks metadata fetched with a v2-only torrent's btmh link against the torrent.
func checkFetchedV2(t *testing.T, got, mi *metainfo.MetaInfo) {
	t.Helper()
	if !bytes.Equal(got.InfoBytes, mi.InfoBytes) || got.InfoHashV2 != mi.InfoHashV2 || got.InfoHash != (metainfo.Hash{}) {
		t.Fatalf("fetched metadata differs: v2 %s v1 %s", got.InfoHashV2, got.InfoHash)
	}
	if len(got.PieceLayers) != len(mi.PieceLayers) {
		t.Fatalf("%d piece layers, want %d", len(got.PieceLayers), len(mi.PieceLayers))
	}
	for root, l := range mi.PieceLayers {
		if !bytes.Equal(got.PieceLayers[root], l) {
			t.Fatalf("piece layer of root %s differs", root)
		}
	}
	if err := got.CheckVerifiable(); err != nil {
		t.Fatal(err)
	}
}

// A magnet link with only the v2 info-hash (urn:btmh): the info dictionary comes from our
// seeders (by ut_metadata, checked by its SHA-256), the piece layers of the files longer
// than a piece in hash requests (two for huge.bin's 600 hashes), and the torrent made of
// them downloads.
func TestFetchV2OnlyMetadataAndLayers(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeV2Only(t, src, 16<<10)
	var addrs []netip.AddrPort
	for range 2 {
		sc := newClient(t, swarm.ClientConfig{})
		addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		addrs = append(addrs, sc.Addr().(*net.TCPAddr).AddrPort())
	}
	m := magnetFor(mi, addrs[0])
	if m.HasV1() || !m.HasV2() {
		t.Fatalf("the v2-only torrent's link %s", m)
	}
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, m, 30*time.Second, addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	checkFetchedV2(t, got, mi)
	out := t.TempDir()
	tr := addTorrent(t, c, got, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: addrs})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "v2o"), filepath.Join(out, "v2o"))
}

// layerAnswer answers a hash request for mi's piece layers the honest way, or with garbage.
func layerAnswer(t *testing.T, mi *metainfo.MetaInfo, garbage bool) func(h wire.HashRequestFields) []byte {
	return func(h wire.HashRequestFields) []byte {
		for i := range mi.Info.Files {
			f := &mi.Info.Files[i]
			if f.PiecesRoot != h.PiecesRoot {
				continue
			}
			ft, err := mi.FileTree(f)
			if err != nil {
				t.Error(err)
				return nil
			}
			r := metainfo.HashRange{BaseLayer: int(h.BaseLayer), Index: int(h.Index), Length: int(h.Length), ProofLayers: int(h.ProofLayers)}
			ans, err := ft.Answer(r, -1, nil)
			if err != nil {
				return frame(h.Message(wire.HashReject))
			}
			out := make([][wire.HashLen]byte, len(ans))
			for k := range ans {
				out[k] = ans[k]
				if garbage {
					out[k][k%wire.HashLen] ^= 0x5a
				}
			}
			m := wire.HashesMessage(h, out)
			return m.AppendTo(nil)
		}
		return frame(h.Message(wire.HashReject))
	}
}

// A peer that gives the right info dictionary but piece-layer hashes that fail their proof
// is dropped and not dialed again; alone, it leaves the fetch without a result; beside an
// honest peer, the fetch completes with the honest layers.
func TestFetchV2OnlyLayersFromLiar(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeV2Only(t, src, 16<<10)
	ih := mi.InfoHashV2.Truncate()
	liar := startMetaPeer(t, "127.0.0.66", ih, len(mi.InfoBytes), honest(mi.InfoBytes))
	liar.hashes = layerAnswer(t, mi, true)
	c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionOff})
	_, err := fetch(t, c, magnetFor(mi, liar.addr()), 4*time.Second)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "piece layer hashes") {
		t.Fatalf("fetch from a liar alone: %v; want a timeout naming the bad hashes", err)
	}
	if n := liar.conns.Load(); n != 1 {
		t.Errorf("the liar was dialed %d times, want once", n)
	}

	good := startMetaPeer(t, "127.0.0.67", ih, len(mi.InfoBytes), honest(mi.InfoBytes))
	good.hashes = layerAnswer(t, mi, false)
	liar2 := startMetaPeer(t, "127.0.0.68", ih, len(mi.InfoBytes), honest(mi.InfoBytes))
	liar2.hashes = layerAnswer(t, mi, true)
	c2 := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionOff})
	got, err := fetch(t, c2, magnetFor(mi, liar2.addr()), 30*time.Second, good.addr())
	if err != nil {
		t.Fatal(err)
	}
	checkFetchedV2(t, got, mi)
}

// libtorrent 2.0 seeds a v2-only torrent made by metainfo.Create; we fetch it with its btmh
// link alone: libtorrent gives the info dictionary and answers our hash requests for the
// piece layers, and we download the data from it.
func TestV2OnlyMagnetFromLibtorrent(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, torrent := makeV2Only(t, src, 16<<10)
	port := testpeers.FreePort(t, "127.0.0.57")
	p := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.57", Port: port, Torrent: torrent, SaveDir: src, Seed: true})
	testpeers.LibtorrentWait(t, p, "seeding", 60*time.Second)
	peer := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.57"), uint16(port))
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, magnetFor(mi, peer), 60*time.Second)
	if err != nil {
		t.Fatalf("%v\nlibtorrent:\n%s", err, p.Output())
	}
	checkFetchedV2(t, got, mi)
	out := t.TempDir()
	tr := addTorrent(t, c, got, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{peer}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "v2o"), filepath.Join(out, "v2o"))
}

// libtorrent fetches a v2-only torrent from its btmh link from our seeder: the info
// dictionary by ut_metadata, the piece layers by hash requests we answer, then the data.
func TestLibtorrentGetsV2OnlyMagnetFromUs(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, _ := makeV2Only(t, src, 16<<10)
	libtorrentGetsMagnetFromUs(t, mi, src, "v2o", "127.0.0.58")
}

// A link with only the v2 info-hash of a hybrid: the metadata is checked by its SHA-256 and
// the result has both info-hashes and the piece layers, asked of the seeder.
func TestFetchHybridByV2Hash(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 16<<10)
	sc := newClient(t, swarm.ClientConfig{})
	st := addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	m := &metainfo.Magnet{InfoHashV2: mi.InfoHashV2}
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, m, 30*time.Second, sc.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	checkFetchedHybrid(t, got, mi, true)
	if n := st.NumHashesSent(); n == 0 {
		t.Error("the seeder sent no hashes")
	}
}
