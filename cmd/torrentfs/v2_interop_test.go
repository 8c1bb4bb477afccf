package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// Interop of hybrid (v1 + v2) torrents made by `create --hybrid` with real clients:
// qBittorrent 4.5.2 (libtorrent 2.0.8), which speaks v2, and Transmission 3.00, which
// knows only v1. We transfer hybrids as v1 torrents and take a v2-capable peer's offer to
// switch the connection to v2 (BEP 52), whose hash messages per-block reads use.
//
// What the clients do on loopback, found by these tests: libtorrent switches a connection
// to v2 when the plaintext handshake that names the torrent carries the v2 bit; when we
// dial it inside MSE (which names the torrent first, by the v1 hash) it stays v1. When it
// dials us it offers the switch inside MSE too, and we take it. So a mount that needs block
// hashes from a libtorrent seeder it dials runs with `--encryption off`.

// hybridSet writes files under DIR/set and makes a hybrid torrent of them with `create
// --hybrid` and the given piece size (e.g. "64K").
func hybridSet(t *testing.T, files map[string]int64, piece string, seed uint64) (src, torrent string, mi *metainfo.MetaInfo) {
	t.Helper()
	src = t.TempDir()
	testpeers.WriteFiles(t, filepath.Join(src, "set"), files, seed)
	torrent = filepath.Join(t.TempDir(), "set.torrent")
	if _, stderr, code := runCmd(t, "create", "--hybrid", "--piece-size", piece, "-o", torrent, filepath.Join(src, "set")); code != 0 {
		t.Fatalf("create --hybrid: exit %d: %s", code, stderr)
	}
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Version != metainfo.Hybrid {
		t.Fatalf("create --hybrid made a %s torrent", mi.Info.Version)
	}
	return src, torrent, mi
}

// hybridFiles spans pieces and files of every size a pad file follows or not.
var hybridFiles = map[string]int64{
	"a.bin":      700<<10 + 3,
	"docs/b.txt": 5000,
	"docs/c.bin": 300 << 10,
	"empty":      0,
	"d.bin":      1 << 20,
}

// peerConnectedV2 matches our debug line for a connection of a hybrid that switched to v2.
var peerConnectedV2 = regexp.MustCompile(`msg="peer connected".* v2=true`)

// peerConnectedLines are our "peer connected" debug lines in log.
func peerConnectedLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="peer connected"`) {
			out = append(out, l)
		}
	}
	return out
}

// qbitTorrent is qBittorrent's view of its one torrent.
func qbitTorrent(t *testing.T, q *testpeers.QBittorrent) qbit.Torrent {
	t.Helper()
	ts, err := qbit.Torrents(q.API)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 {
		t.Fatalf("qBittorrent has %d torrents, want 1: %+v", len(ts), ts)
	}
	return ts[0]
}

// checkQBitSeesHybrid checks that qBittorrent took the torrent as the hybrid it is: both
// info-hashes, as ours.
func checkQBitSeesHybrid(t *testing.T, q *testpeers.QBittorrent, mi *metainfo.MetaInfo) {
	t.Helper()
	tr := qbitTorrent(t, q)
	t.Logf("qBittorrent's torrent: %+v", tr)
	if tr.InfoHashV1 != mi.InfoHash.HexString() || tr.InfoHashV2 != mi.InfoHashV2.HexString() {
		t.Errorf("qBittorrent sees info-hashes v1 %q v2 %q, want %s and %s", tr.InfoHashV1, tr.InfoHashV2, mi.InfoHash.HexString(), mi.InfoHashV2.HexString())
	}
}

// waitQBitComplete waits until qBittorrent's one torrent has progress 1.
func waitQBitComplete(t *testing.T, q *testpeers.QBittorrent, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, "qBittorrent to complete the download", func() bool {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		ts, err := qbit.Torrents(q.API)
		return err == nil && len(ts) == 1 && ts[0].Progress >= 1
	})
}

// addQBitPeers has qBittorrent dial peers for its one torrent: it takes none until it has
// loaded the torrent, so this tries until it does.
func addQBitPeers(t *testing.T, q *testpeers.QBittorrent, peers ...string) {
	t.Helper()
	var err error
	defer func() {
		if t.Failed() {
			t.Logf("last answer: %v", err)
		}
	}()
	testutil.WaitFor(t, 20*time.Second, "qBittorrent to take the peers", func() bool {
		var ts []qbit.Torrent
		if ts, err = qbit.Torrents(q.API); err != nil || len(ts) != 1 {
			return false
		}
		err = qbit.AddPeers(q.API, ts[0].Hash, peers...)
		return err == nil
	})
}

// mountSums checks every file of the data tree want against the file of the same path
// under the mount dir, by sha256sum run as a child process, and that the mount lists no
// other file (no pad files).
func mountSums(t *testing.T, want, dir string) {
	t.Helper()
	sums := map[string]string{}
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		s := sha256.Sum256(b)
		sums[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(sh(t, "cd '"+dir+"' && find . -type f -exec sha256sum {} +")), "\n") {
		sum, name, ok := strings.Cut(l, "  ")
		if ok {
			got[strings.TrimPrefix(name, "./")] = sum
		}
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(got) != len(sums) {
		t.Errorf("the mount lists %v, want the %d files of the data", names, len(sums))
	}
	for rel, s := range sums {
		if got[rel] != s {
			t.Errorf("%s through the mount: sha256 %s, want %s", rel, got[rel], s)
		}
	}
}

// qBittorrent downloads a hybrid made by `create --hybrid` from our seeder. It dials us
// (inside MSE: both sides allow it) with the v1 info-hash and the v2 bit, and we switch the
// connection to v2; qBittorrent shows both info-hashes.
func TestQBittorrentGetsHybridFromOurSeed(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, mi := hybridSet(t, hybridFiles, "64K", 21)
	addr := "127.0.0.1:" + strconv.Itoa(testpeers.FreePort(t, "127.0.0.1"))
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers",
		"--log-level", "debug", "--listen", addr, "--data", src, torrent)
	testutil.WaitListening(t, addr, 10*time.Second)

	q := testpeers.StartQBittorrent(t, "127.0.0.41")
	out := t.TempDir()
	q.AddTorrent(t, torrent, out)
	addQBitPeers(t, q, addr)
	waitQBitComplete(t, q, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	checkQBitSeesHybrid(t, q, mi)
	testutil.WaitFor(t, 5*time.Second, "our log of a v2 connection", func() bool { return peerConnectedV2.MatchString(seed.Stderr()) })
	t.Logf("our seeder's connections: %q", peerConnectedLines(seed.Stderr()))
}

// We fetch a hybrid from a qBittorrent seeder with `get` (MSE preferred, our default:
// the connection stays v1, see above; and plaintext, which switches to v2) and read it
// through a mount with `--encryption off` (a v2 connection).
func TestGetAndMountHybridFromQBittorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, mi := hybridSet(t, hybridFiles, "64K", 22)
	q := testpeers.StartQBittorrent(t, "127.0.0.42")
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)
	checkQBitSeesHybrid(t, q, mi)
	peer := fmt.Sprintf("127.0.0.42:%d", q.Port)

	for _, enc := range []string{"prefer", "off"} {
		t.Run("get encryption "+enc, func(t *testing.T) {
			out := t.TempDir()
			log := runGet(t, "--no-trackers", "--log-level", "debug", "--encryption", enc, "--peer", peer, "--out", out, torrent)
			testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
			lines := peerConnectedLines(log)
			t.Logf("connections: %q", lines)
			if len(lines) == 0 {
				t.Fatalf("no connection in the log:\n%s", log)
			}
			if enc == "off" && !peerConnectedV2.MatchString(log) {
				t.Errorf("a plaintext connection to libtorrent did not switch to v2: %q", lines)
			}
		})
	}

	t.Run("mount", func(t *testing.T) {
		testutil.NeedFUSE(t)
		mnt := filepath.Join(t.TempDir(), "m")
		m := mountAt(t, torrent, mnt, "--log-level", "debug", "--encryption", "off", "--peer", peer, "--cache-dir", t.TempDir())
		mountSums(t, filepath.Join(src, "set"), filepath.Join(mnt, "set"))
		if !peerConnectedV2.MatchString(m.Stderr()) {
			t.Errorf("the mount's connection did not switch to v2: %q", peerConnectedLines(m.Stderr()))
		}
	})
}
