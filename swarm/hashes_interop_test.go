package swarm_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// libtorrent 2.0 seeds a hybrid made by metainfo.Create; we connect with the v1 info-hash
// and the v2 bit, it switches the connection to v2, and answers our hash requests for the
// block hashes of first, middle and last (partial) pieces, which we check against the piece
// layer and against the data.
func TestBlockHashesFromLibtorrent(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, torrent := makeHybrid(t, src, 64<<10)
	port := testpeers.FreePort(t, "127.0.0.55")
	p := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.55", Port: port, Torrent: torrent, SaveDir: src, Seed: true})
	testpeers.LibtorrentWait(t, p, "seeding", 60*time.Second)
	// In plaintext libtorrent 2.0 takes the v2 bit's offer of a handshake naming the v1
	// hash; inside MSE it ignores the bit, and our encrypted dial names the v2 hash first.
	for k, enc := range []swarm.Encryption{swarm.EncryptionOff, swarm.EncryptionRequire} {
		t.Run(enc.String(), func(t *testing.T) {
			// Each client dials from its own IP. libtorrent keeps one connection per IP and
			// drops a new one while the last subtest's, closed a moment before, is still
			// there on its side (seen once in CI on a loaded machine). Dial's answer to that
			// (retryV2, utp.go) is TestHybridEncryptedDialRetriesV2's; here the drop would
			// only hide what this test checks.
			dial := netip.AddrFrom4([4]byte{127, 0, 0, byte(101 + k)})
			c := newClient(t, swarm.ClientConfig{Encryption: enc, DialAddr: dial})
			tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, NoBackground: true, CacheBytes: 1 << 20,
				Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.55"), uint16(port))}})
			testutil.WaitFor(t, 20*time.Second, "a v2 connection to libtorrent", func() bool { return tr.NumV2Peers() == 1 })
			if ps := tr.Peers(context.Background()); len(ps) != 1 || ps[0].Encrypted != (enc == swarm.EncryptionRequire) {
				t.Fatalf("peers %+v, want one, encrypted %v", ps, enc == swarm.EncryptionRequire)
			}
			checkBlockHashes(t, tr, mi, src)
			if strings.Contains(p.Output(), "invalid_hash") || strings.Contains(p.Output(), "invalid hash") {
				t.Fatalf("libtorrent complained about our hash messages:\n%s", p.Output())
			}
		})
	}
}

// libtorrent fetches a hybrid from a magnet link from our seeder: with no piece layers it
// asks us for them (hash requests at the piece layer, with proofs up to the root), checks
// our answers against the pieces roots and completes the download. It dials us with the v1
// hash and the v2 bit (inside MSE: encryption is allowed on both sides) and we switch the
// connection to v2; hash messages are only answered on v2 connections.
func TestLibtorrentGetsPieceLayersFromUs(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 16<<10) // small pieces: big.bin's piece layer has 22 hashes
	libtorrentGetsMagnetFromUs(t, mi, src, "hyb", "127.0.0.56")
}

// libtorrentGetsMagnetFromUs has python-libtorrent on ip fetch mi's magnet link from our
// seeder of src (the torrent's directory is name), checks the copy, and checks that it
// asked us for hashes.
func libtorrentGetsMagnetFromUs(t *testing.T, mi *metainfo.MetaInfo, src, name, ip string) {
	t.Helper()
	seeder := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	var out string
	var p *testutil.Proc
	for try := 1; ; try++ {
		out = t.TempDir()
		p = testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: ip, Torrent: mi.Magnet().String(), SaveDir: out,
			Peers: []string{"127.0.0.1:" + strconv.Itoa(int(seeder.Port()))}})
		failed := testpeers.LibtorrentWaitErr(t, p, "finished", 120*time.Second)
		if failed == "" {
			break
		}
		// libtorrent 2.0 can error out a hybrid ("v1 and v2 hashes do not describe the
		// same data", 217) when the hashes it asked for come only after it has hashed the
		// piece's blocks itself: torrent::add_hashes then finds a piece that passes and is
		// not yet had. A race inside libtorrent, seen in full test runs on a loaded machine
		// (never in ten runs alone), once on two tries in a row (libtorrent took 10 s to
		// add the magnet there). Wrong hashes of ours would fail every try.
		if try < 3 && strings.Contains(failed, "(217 ") {
			t.Logf("libtorrent's hybrid race, trying again: %s", failed)
			p.Stop()
			continue
		}
		t.Fatalf("libtorrent failed: %s\n%s", failed, p.Output())
	}
	testpeers.SameTree(t, filepath.Join(src, name), filepath.Join(out, name))
	if n := tr.NumHashesSent(); n == 0 {
		t.Fatalf("libtorrent asked us for no hashes:\n%s", p.Output())
	}
}
