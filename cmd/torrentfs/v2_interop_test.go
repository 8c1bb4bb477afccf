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
// to v2 when the plaintext handshake that names the torrent carries the v2 bit; inside MSE
// it ignores the bit and goes by the hash the MSE key names, so our encrypted dials of a
// hybrid name the v2 hash (and retry with the v1 one if the peer does not know it). When it
// dials us it offers the switch inside MSE too, and we take it.

// hybridSet writes files under DIR/set and makes a hybrid torrent of them with `create
// --hybrid` and the given piece size (e.g. "64K").
func hybridSet(t *testing.T, files map[string]int64, piece string, seed uint64) (src, torrent string, mi *metainfo.MetaInfo) {
	t.Helper()
	return createdSet(t, "--hybrid", metainfo.Hybrid, files, piece, seed)
}

// v2OnlySet is hybridSet with `create --v2`: a v2-only torrent.
func v2OnlySet(t *testing.T, files map[string]int64, piece string, seed uint64) (src, torrent string, mi *metainfo.MetaInfo) {
	t.Helper()
	return createdSet(t, "--v2", metainfo.V2, files, piece, seed)
}

func createdSet(t *testing.T, flag string, want metainfo.Version, files map[string]int64, piece string, seed uint64) (src, torrent string, mi *metainfo.MetaInfo) {
	t.Helper()
	src = t.TempDir()
	testpeers.WriteFiles(t, filepath.Join(src, "set"), files, seed)
	torrent = filepath.Join(t.TempDir(), "set.torrent")
	if _, stderr, code := runCmd(t, "create", flag, "--piece-size", piece, "-o", torrent, filepath.Join(src, "set")); code != 0 {
		t.Fatalf("create %s: exit %d: %s", flag, code, stderr)
	}
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Version != want {
		t.Fatalf("create %s made a %s torrent", flag, mi.Info.Version)
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

// v2OnlyFiles has, with 64 KiB pieces, files smaller than a piece, of exactly one piece, of
// several pieces with a short last one, and an empty one.
var v2OnlyFiles = map[string]int64{
	"a.bin":        700<<10 + 3,
	"docs/b.txt":   5000,
	"docs/one.bin": 64 << 10,
	"empty":        0,
	"d.bin":        1 << 20,
}

// peerConnectedV2 matches our debug line for a connection of a hybrid that switched to v2.
var peerConnectedV2 = regexp.MustCompile(`msg="peer connected".* v2=true`)

// peerConnectedRC4V2 matches a "peer connected" line of an encrypted v2 connection.
var peerConnectedRC4V2 = regexp.MustCompile(`msg="peer connected".* encryption=rc4 .*v2=true`)

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

// We fetch a hybrid from a qBittorrent seeder with `get` (MSE preferred, our default, and
// plaintext: both switch to v2, see above) and read it through a mount (encrypted, v2).
func TestGetAndMountHybridFromQBittorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, mi := hybridSet(t, hybridFiles, "64K", 22)
	q := testpeers.StartQBittorrent(t, "127.0.0.42")
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)
	q.WaitHandshake(t, "127.0.0.42", mi.InfoHash, 20*time.Second)
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
			if !peerConnectedV2.MatchString(log) {
				t.Errorf("a connection to libtorrent (encryption %s) did not switch to v2: %q", enc, lines)
			}
		})
	}

	t.Run("mount", func(t *testing.T) {
		testutil.NeedFUSE(t)
		mnt := filepath.Join(t.TempDir(), "m")
		m := mountAt(t, torrent, mnt, "--log-level", "debug", "--peer", peer, "--cache-dir", t.TempDir())
		mountSums(t, filepath.Join(src, "set"), filepath.Join(mnt, "set"))
		if !peerConnectedRC4V2.MatchString(m.Stderr()) {
			t.Errorf("the mount's connection is not encrypted v2: %q", peerConnectedLines(m.Stderr()))
		}
	})

	// The btih link alone: the fetch asks qBittorrent for the piece layers over an
	// encrypted connection named (and keyed) by the v2 hash, and the download is a hybrid's.
	t.Run("get btih link", func(t *testing.T) {
		out := t.TempDir()
		link := "magnet:?xt=urn:btih:" + mi.InfoHash.HexString() + "&x.pe=" + peer
		log := runGet(t, "--no-trackers", "--log-level", "debug", "--peer", peer, "--out", out, link)
		testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
		if !strings.Contains(log, "got the piece layers") {
			t.Errorf("no piece layers fetched:\n%s", log)
		}
		if !peerConnectedV2.MatchString(log) {
			t.Errorf("no v2 connection: %q", peerConnectedLines(log))
		}
	})
}

// sameSums checks each file under want against the file of the same path under got by
// sha256; with skipEmpty, empty files are not looked for (Transmission creates none).
func sameSums(t *testing.T, want, got string, skipEmpty bool) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || skipEmpty && fi.Size() == 0 {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, b := fileSHA256(t, p), fileSHA256(t, filepath.Join(got, rel))
		if a != b {
			t.Errorf("%s: sha256 %s, want %s", filepath.Join(got, rel), b, a)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("no files checked under %s: %v", want, err)
	}
}

// A swarm of three on one hybrid: qBittorrent seeds it; a libtorrent peer
// (python3-libtorrent, a separate session from qBittorrent's) and our `get` download it,
// each connected to the other two: qBittorrent dials both downloaders, the libtorrent peer
// dials qBittorrent and us, and we dial both (duplicates of a pair's connections are
// dropped). Each says it is done in its own way: qBittorrent's progress, the libtorrent
// peer's finished alert, our get's exit status 0.
//
// The v1-only clients on this machine were meant to be in it, but neither can join a
// hybrid swarm: see TestTransmission300RefusesHybrids and TestAria2MisreadsHybrids.
func TestHybridSwarmQBittorrentLibtorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	testpeers.NeedLibtorrent(t)
	src, torrent, mi := hybridSet(t, hybridFiles, "64K", 23)
	// 1 MiB/s for the 2 MiB: the downloaders are still at it when all three are
	// connected, and trade pieces between them.
	q := testpeers.StartQBittorrentLimited(t, "127.0.0.45", 1<<20)
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)
	q.WaitHandshake(t, "127.0.0.45", mi.InfoHash, 20*time.Second)
	checkQBitSeesHybrid(t, q, mi)

	qAddr := fmt.Sprintf("127.0.0.45:%d", q.Port)
	ourAddr := "127.0.0.47:" + strconv.Itoa(testpeers.FreePort(t, "127.0.0.47"))
	ltPort := testpeers.FreePort(t, "127.0.0.46")
	ltAddr := "127.0.0.46:" + strconv.Itoa(ltPort)
	ourOut, ltOut := t.TempDir(), t.TempDir()
	lt := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.46", Port: ltPort, Torrent: torrent, SaveDir: ltOut,
		Peers: []string{qAddr, ourAddr}})
	testpeers.LibtorrentWait(t, lt, "added", 20*time.Second)
	get := testutil.Start(t, torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--log-level", "debug",
		"--listen", ourAddr, "--peer", ltAddr, "--peer", qAddr, "--out", ourOut, torrent)
	testutil.WaitListening(t, ourAddr, 10*time.Second)
	addQBitPeers(t, q, ltAddr, ourAddr)

	if err := get.Wait(t, 60*time.Second); err != nil {
		t.Fatalf("get: %v\n%s", err, get.Output())
	}
	sameSums(t, filepath.Join(src, "set"), filepath.Join(ourOut, "set"), false)
	testpeers.LibtorrentWait(t, lt, "finished", 60*time.Second)
	sameSums(t, filepath.Join(src, "set"), filepath.Join(ltOut, "set"), false)
	if tr := qbitTorrent(t, q); tr.Progress < 1 {
		t.Errorf("qBittorrent, the seeder, shows progress %v", tr.Progress)
	}
	lines := peerConnectedLines(get.Stderr())
	t.Logf("our connections: %q", lines)
	var withL, withQ bool
	for _, l := range lines {
		withL = withL || strings.Contains(l, `peer="127.0.0.46:`)
		withQ = withQ || strings.Contains(l, `peer="127.0.0.45:`)
	}
	if !withL || !withQ {
		t.Errorf("our get connected to the libtorrent peer %t, to qBittorrent %t; want both", withL, withQ)
	}
}

// aria2c 1.36 (Debian's) loads a hybrid as a v1 torrent with its pad files as files, but
// computes a wrong v1 info-hash for it: it hashes its own re-encoding of the info
// dictionary, which leaves out every entry with an empty key, and BEP 52's file tree keys
// each file's leaf by "". So it asks peers for a torrent nobody has, and turns every peer
// away ("Unknown info hash", in its debug log, for our handshake naming the true one).
// This pins that down; if it fails, aria2c has learnt to hash the bytes as they are and
// belongs in TestHybridSwarmQBittorrentLibtorrent.
func TestAria2MisreadsHybrids(t *testing.T) {
	testutil.Need(t, "aria2c")
	_, torrent, mi := hybridSet(t, hybridFiles, "64K", 25)
	out := sh(t, "aria2c -S '"+torrent+"'")
	m := regexp.MustCompile(`(?m)^Info Hash: ([0-9a-f]{40})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("aria2c -S printed no info-hash:\n%s", out)
	}
	if m[1] == mi.InfoHash.HexString() {
		t.Fatalf("aria2c computes the hybrid's info-hash right (%s): it can join the swarm test", m[1])
	}
	// What it hashes instead: the info dictionary without the file tree's leaves.
	if !strings.Contains(out, ".pad/") {
		t.Errorf("aria2c -S lists no pad files:\n%s", out)
	}
	t.Logf("aria2c's info-hash %s, ours (and libtorrent's) %s", m[1], mi.InfoHash.HexString())
}

// Transmission 3.00 (Debian's) cannot take part in any hybrid swarm, ours or libtorrent's:
// its bencode parser rejects a dictionary with an empty key, and BEP 52's file tree keys
// each file's leaf by "". It refuses the .torrent ("invalid or corrupt torrent file"); given
// the magnet link with the v1 info-hash it fetches the info dictionary from a seeder and
// checks its SHA-1, then fails to parse it, and asks again every few seconds forever
// ("magnet status: checksum passed 1, metainfo parsed 0"). This test pins that finding
// down: if it fails, the Transmission on this machine has learnt hybrids (4.0 has) and
// belongs in TestHybridSwarmQBittorrentAria2.
func TestTransmission300RefusesHybrids(t *testing.T) {
	testutil.Need(t, "transmission-daemon")
	src, torrent, mi := hybridSet(t, hybridFiles, "64K", 24)
	out := t.TempDir()
	tm := testpeers.StartTransmissionDaemon(t, out, testpeers.TransmissionOpts{IP: "127.0.0.48"})
	err := tm.TryAdd(torrent, out)
	if err == nil || !strings.Contains(err.Error(), "invalid or corrupt torrent file") {
		t.Fatalf("Transmission took the hybrid .torrent (%v)", err)
	}
	tm.Add(t, "magnet:?xt=urn:btih:"+mi.InfoHash.HexString()+"&dn=set", out)
	ts, err := tm.Torrents()
	if err != nil || len(ts) != 1 || ts[0].HashString != mi.InfoHash.HexString() {
		t.Fatalf("Transmission's torrents: %+v, %v", ts, err)
	}
	// Transmission 3.00 reads no peer from a link: our seeder dials it.
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--log-level", "debug",
		"--listen", "127.0.0.1:0", "--peer", "127.0.0.48:"+strconv.Itoa(tm.Port), "--data", src, torrent)
	testutil.WaitFor(t, 10*time.Second, "our seeder's connection to Transmission", func() bool {
		return strings.Contains(seed.Stderr(), `msg="peer connected" client="Transmission 3.`)
	})
	testutil.WaitFor(t, 30*time.Second, "Transmission to fail to parse the info dictionary", func() bool {
		return strings.Contains(tm.Proc.Output(), "checksum passed 1, metainfo parsed 0")
	})
	if ts, _ := tm.Torrents(); len(ts) != 1 || ts[0].PercentDone != 0 {
		t.Errorf("Transmission's torrents: %+v", ts)
	}
}

// TestMountHybridReleasesBlocksQBittorrent is TestMountHybridReleasesBlocks against a real
// libtorrent seeder: qBittorrent sending 1 MiB/s (its limit covers loopback peers, see
// qbit.Profile) is the only peer of a mount of a hybrid with 4 MiB pieces, and 16 KiB
// reads at cold offsets return with the right bytes while their pieces are incomplete: the
// block hashes come from qBittorrent in BEP 52 hash messages, over an encrypted v2
// connection (our MSE dial names the v2 hash).
func TestMountHybridReleasesBlocksQBittorrent(t *testing.T) {
	testutil.NeedFUSE(t)
	testutil.Need(t, "qbittorrent-nox")
	src, torrent := clipTorrent(t, "--hybrid", 17)
	q := testpeers.StartQBittorrentLimited(t, "127.0.0.49", 1<<20)
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	q.WaitHandshake(t, "127.0.0.49", mi.InfoHash, 20*time.Second)
	// Our encrypted dial names the v2 hash. A first dial that qBittorrent drops (seen
	// once, half a second after it answered the v1 probe on a loaded machine) is taken
	// for a peer that knows no v2 hash, and the retry naming the v1 one gets a v1
	// connection (libtorrent ignores the v2 bit inside MSE).
	q.WaitHandshake(t, "127.0.0.49", mi.InfoHashV2.Truncate(), 20*time.Second)

	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--log-level", "debug", "--cache-size", "64M",
		"--peer", fmt.Sprintf("127.0.0.49:%d", q.Port), "--cache-dir", t.TempDir())
	testutil.WaitFor(t, 20*time.Second, "an encrypted v2 connection to qBittorrent", func() bool { return peerConnectedRC4V2.MatchString(m.Stderr()) })
	checkReadsReleasedByBlocks(t, m, src, mnt, []int64{2*clipPiece + clipPiece/2 + 4321, 3*clipPiece + 123<<10})
}

// checkQBitSeesV2Only checks that qBittorrent took the torrent as v2-only: no v1 info-hash,
// our v2 one, and its id the v2 one truncated.
func checkQBitSeesV2Only(t *testing.T, q *testpeers.QBittorrent, mi *metainfo.MetaInfo) {
	t.Helper()
	tr := qbitTorrent(t, q)
	t.Logf("qBittorrent's torrent: %+v", tr)
	if tr.InfoHashV1 != "" || tr.InfoHashV2 != mi.InfoHashV2.HexString() || tr.Hash != mi.InfoHashV2.Truncate().HexString() {
		t.Errorf("qBittorrent sees info-hashes v1 %q v2 %q (id %q), want none and %s", tr.InfoHashV1, tr.InfoHashV2, tr.Hash, mi.InfoHashV2.HexString())
	}
}

// mountCmp compares each file under want with the file of the same path under the mount
// dir, by cmp run as a child process.
func mountCmp(t *testing.T, want, dir string) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		// Bounded: a read that hangs fails this test, whose cleanup then logs the mount's
		// output, instead of the package's timeout, which logs nothing of it (seen once).
		sh(t, "timeout -s KILL 120 cmp '"+p+"' '"+filepath.Join(dir, rel)+"'")
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("compared %d files: %v", n, err)
	}
}

// qBittorrent downloads a v2-only torrent made by `create --v2` from our seeder: it dials us
// with the truncated v2 info-hash (inside MSE, which names the torrent by that hash too) and
// every piece it gets passes its merkle check.
func TestQBittorrentGetsV2OnlyFromOurSeed(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, mi := v2OnlySet(t, v2OnlyFiles, "64K", 31)
	addr := "127.0.0.1:" + strconv.Itoa(testpeers.FreePort(t, "127.0.0.1"))
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers",
		"--log-level", "debug", "--listen", addr, "--data", src, torrent)
	testutil.WaitListening(t, addr, 10*time.Second)

	q := testpeers.StartQBittorrent(t, "127.0.0.51")
	out := t.TempDir()
	q.AddTorrent(t, torrent, out)
	addQBitPeers(t, q, addr)
	waitQBitComplete(t, q, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	checkQBitSeesV2Only(t, q, mi)
	testutil.WaitFor(t, 5*time.Second, "our log of a v2 connection", func() bool { return peerConnectedV2.MatchString(seed.Stderr()) })
	t.Logf("our seeder's connections: %q", peerConnectedLines(seed.Stderr()))
}

// We fetch a v2-only torrent from a qBittorrent seeder: `get` of its .torrent (MSE
// preferred, our default, and plaintext) and of its btmh link alone (the info dictionary by
// ut_metadata, checked by SHA-256; the piece layers by hash requests qBittorrent answers);
// and a mount of each, whose files cmp equal to the data.
func TestGetAndMountV2OnlyFromQBittorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, mi := v2OnlySet(t, v2OnlyFiles, "64K", 32)
	q := testpeers.StartQBittorrent(t, "127.0.0.52")
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)
	q.WaitHandshake(t, "127.0.0.52", mi.InfoHashV2.Truncate(), 20*time.Second)
	checkQBitSeesV2Only(t, q, mi)
	peer := fmt.Sprintf("127.0.0.52:%d", q.Port)
	link := mi.Magnet().String()

	for _, c := range []struct{ name, arg, enc string }{
		{"get torrent encryption prefer", torrent, "prefer"},
		{"get torrent encryption off", torrent, "off"},
		{"get btmh link", link, "prefer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			log := runGet(t, "--no-trackers", "--log-level", "debug", "--encryption", c.enc, "--peer", peer, "--out", out, c.arg)
			testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
			if !peerConnectedV2.MatchString(log) {
				t.Errorf("no v2 connection: %q", peerConnectedLines(log))
			}
			if c.arg == link && !strings.Contains(log, "got the piece layers") {
				t.Errorf("the piece layers did not come from qBittorrent:\n%s", log)
			}
		})
	}
	for how, arg := range map[string]string{"torrent": torrent, "btmh link": link} {
		t.Run("mount "+how, func(t *testing.T) {
			testutil.NeedFUSE(t)
			mnt := filepath.Join(t.TempDir(), "m")
			m := mountAt(t, arg, mnt, "--log-level", "debug", "--peer", peer, "--cache-dir", t.TempDir())
			waitFiles(t, filepath.Join(mnt, "set"), 60*time.Second)
			mountCmp(t, filepath.Join(src, "set"), filepath.Join(mnt, "set"))
			mountSums(t, filepath.Join(src, "set"), filepath.Join(mnt, "set"))
			if !peerConnectedV2.MatchString(m.Stderr()) {
				t.Errorf("the mount's connection is not v2: %q", peerConnectedLines(m.Stderr()))
			}
		})
	}
}
