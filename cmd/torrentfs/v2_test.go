package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// v2Torrents creates a v2-only and a hybrid torrent of one directory with `create` and loads
// them back.
func v2Torrents(t *testing.T) (v2Path, hybridPath string, v2, hybrid *metainfo.MetaInfo) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "set")
	writeTree(t, src, map[string]int{"a.bin": 40_000, "b/c.bin": 16_384, "b/empty": 0, "d.bin": 5})
	v2Path, hybridPath = filepath.Join(dir, "v2.torrent"), filepath.Join(dir, "hybrid.torrent")
	for _, c := range []struct{ flag, out string }{{"--v2", v2Path}, {"--hybrid", hybridPath}} {
		stdout, stderr, code := runCmd(t, "create", c.flag, "--no-date", "--piece-size", "16K", "-o", c.out, src)
		if code != 0 {
			t.Fatalf("create %s: exit %d: %s", c.flag, code, stderr)
		}
		m, err := metainfo.Load(c.out)
		if err != nil {
			t.Fatal(err)
		}
		want := "info-hash v2: " + m.InfoHashV2.HexString() + "\nmagnet:       " + m.Magnet().String() + "\n"
		if c.flag == "--hybrid" {
			want = "info-hash:    " + m.InfoHash.HexString() + "\n" + want
		}
		if !strings.HasPrefix(stdout, want) {
			t.Errorf("create %s printed\n%s\nwant it to start\n%s", c.flag, stdout, want)
		}
		if c.flag == "--v2" {
			v2 = m
		} else {
			hybrid = m
		}
	}
	if v2.Info.Version != metainfo.V2 || hybrid.Info.Version != metainfo.Hybrid {
		t.Fatalf("versions %s and %s", v2.Info.Version, hybrid.Info.Version)
	}
	return v2Path, hybridPath, v2, hybrid
}

func TestCreateV2Flags(t *testing.T) {
	v2Torrents(t)
	_, stderr, code := runCmd(t, "create", "--v2", "--hybrid", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "--v2 and --hybrid exclude each other") {
		t.Errorf("--v2 --hybrid: exit %d, %q", code, stderr)
	}
}

func TestInfoV2(t *testing.T) {
	v2Path, hybridPath, v2, hybrid := v2Torrents(t)
	for _, c := range []struct {
		path        string
		m           *metainfo.MetaInfo
		version     string
		text        []string
		v1, v1Field string
	}{
		{v2Path, v2, "v2", []string{"version:       v2 only", "info-hash v2:  " + v2.InfoHashV2.HexString() + "\n"}, "", ""},
		{hybridPath, hybrid, "hybrid", []string{"version:       hybrid (v1 and v2)", "info-hash:     " + hybrid.InfoHash.HexString() + "\n",
			"info-hash v2:  " + hybrid.InfoHashV2.HexString() + "\n"}, hybrid.InfoHash.HexString(), "infohash"},
	} {
		stdout, stderr, code := runCmd(t, "info", c.path)
		if code != 0 {
			t.Fatalf("info %s: exit %d: %s", c.version, code, stderr)
		}
		for _, want := range append(c.text, "magnet:        "+c.m.Magnet().String()+"\n", "files (4):", "set/b/empty") {
			if !strings.Contains(stdout, want) {
				t.Errorf("info of the %s torrent lacks %q:\n%s", c.version, want, stdout)
			}
		}
		if strings.Contains(stdout, ".pad") {
			t.Errorf("info shows pad files:\n%s", stdout)
		}
		if c.v1 == "" && strings.Contains(stdout, "info-hash: ") {
			t.Errorf("info of a v2-only torrent shows a v1 info-hash:\n%s", stdout)
		}

		stdout, _, _ = runCmd(t, "info", "--json", c.path)
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if got["version"] != c.version || got["infohash_v2"] != c.m.InfoHashV2.HexString() || got["magnet"] != c.m.Magnet().String() {
			t.Errorf("JSON of the %s torrent: %v", c.version, got)
		}
		if v, ok := got["infohash"]; ok != (c.v1 != "") || ok && v != c.v1 {
			t.Errorf("JSON infohash of the %s torrent: %v", c.version, v)
		}
		mg, err := metainfo.ParseMagnet(got["magnet"].(string))
		if err != nil || mg.InfoHashV2 != c.m.InfoHashV2 || mg.InfoHash != c.m.InfoHash {
			t.Errorf("magnet %v parses to %+v, %v", got["magnet"], mg, err)
		}
	}

	// A magnet link with only a v2 hash, and one with both.
	v2Link := "magnet:?xt=urn:btmh:1220" + v2.InfoHashV2.HexString()
	stdout, _, code := runCmd(t, "info", v2Link)
	if code != 0 || !strings.Contains(stdout, "info-hash v2:  "+v2.InfoHashV2.HexString()) || strings.Contains(stdout, "info-hash: ") {
		t.Errorf("info of a btmh link: exit %d\n%s", code, stdout)
	}
	stdout, _, _ = runCmd(t, "info", "--json", hybrid.Magnet().String())
	var mj magnetJSON
	if err := json.Unmarshal([]byte(stdout), &mj); err != nil || mj.InfoHash != hybrid.InfoHash.HexString() ||
		mj.InfoHashV2 != hybrid.InfoHashV2.HexString() || mj.Magnet != hybrid.Magnet().String() {
		t.Errorf("info --json of a hybrid link: %+v, %v", mj, err)
	}
}

// TestGetV2Only downloads a v2-only torrent made by `create --v2` (files smaller than a
// piece, of exactly one, of several, an empty one) with `get`: from our seeder and from
// libtorrent seeding the same files, each by the .torrent and by the btmh link alone (whose
// piece layers the seeder gives in hash requests). Every piece is checked by its SHA-256
// merkle root; nothing of the pad files reaches the disk.
func TestGetV2Only(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src, torrent, mi := v2OnlySet(t, v2OnlyFiles, "64K", 12)
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers",
		"--listen", "127.0.0.1:0", "--data", src, torrent)
	testutil.WaitFor(t, 30*time.Second, "the seeder's port", func() bool {
		if seed.Exited() {
			t.Fatalf("seed exited: %v\n%s", seed.Err(), seed.Stderr())
		}
		return seedPort.MatchString(seed.Stdout())
	})
	// It names the torrent by the v2 info-hash, the one a user knows it by.
	if want := "seeding " + mi.InfoHashV2.HexString() + " on port"; !strings.Contains(seed.Stdout(), want) {
		t.Errorf("seed printed %q, want %q", seed.Stdout(), want)
	}
	ours := "127.0.0.1:" + seedPort.FindStringSubmatch(seed.Stdout())[1]
	port := testpeers.FreePort(t, "127.0.0.13")
	lt := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.13", Port: port, Torrent: torrent, SaveDir: src, Seed: true})
	testpeers.LibtorrentWait(t, lt, "seeding", 30*time.Second)
	link := mi.Magnet().String()
	if !strings.HasPrefix(link, "magnet:?xt=urn:btmh:1220") || strings.Contains(link, "btih") {
		t.Fatalf("the v2-only torrent's link %s", link)
	}
	for name, peer := range map[string]string{"our seeder": ours, "libtorrent": "127.0.0.13:" + strconv.Itoa(port)} {
		for how, arg := range map[string]string{"torrent": torrent, "btmh link": link} {
			t.Run(name+" "+how, func(t *testing.T) {
				out := t.TempDir()
				log := runGet(t, "--no-trackers", "--log-level", "debug", "--peer", peer, "--out", out, arg)
				testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
				if _, err := os.Stat(filepath.Join(out, "set", ".pad")); err == nil {
					t.Error("pad files were written to disk")
				}
				if !peerConnectedV2.MatchString(log) {
					t.Errorf("no v2 connection: %q", peerConnectedLines(log))
				}
				if arg == link && !strings.Contains(log, "got the piece layers") {
					t.Errorf("no piece layers fetched:\n%s", log)
				}
			})
		}
	}
}

// TestGetHybrid downloads a hybrid torrent made by `create --hybrid` as a v1 torrent, from our
// seeder and from libtorrent seeding the same file: hybrids work as v1 torrents do, pad files
// and all (none of them reaches the disk).
func TestGetHybrid(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	testpeers.WriteFiles(t, filepath.Join(src, "set"), cliFiles, 11)
	torrent := filepath.Join(t.TempDir(), "set.torrent")
	if _, stderr, code := runCmd(t, "create", "--hybrid", "--piece-size", "32K", "-o", torrent, filepath.Join(src, "set")); code != 0 {
		t.Fatalf("create --hybrid: exit %d: %s", code, stderr)
	}
	port := testpeers.FreePort(t, "127.0.0.11")
	lt := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.11", Port: port, Torrent: torrent, SaveDir: src, Seed: true})
	testpeers.LibtorrentWait(t, lt, "seeding", 30*time.Second)
	ltAddr := "127.0.0.11:" + strconv.Itoa(port)
	for name, peer := range map[string]string{"our seeder": seeder(t, torrent, src), "libtorrent": ltAddr} {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			runGet(t, "--no-trackers", "--peer", peer, "--out", out, torrent)
			testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
			if _, err := os.Stat(filepath.Join(out, "set", ".pad")); err == nil {
				t.Error("pad files were written to disk")
			}
		})
	}
}

// TestMountHybridReleasesBlocks reads 16 KiB at cold offsets of a hybrid torrent with
// 4 MiB pieces from a seeder sending 1 MiB/s: each read returns with the right bytes while
// its piece is still incomplete (the engine's log says so), since the blocks under it are
// verified on their own against BEP 52 block hashes.
func TestMountHybridReleasesBlocks(t *testing.T) {
	testutil.NeedFUSE(t)
	src, torrent := clipTorrent(t, "--hybrid", 13)
	peer := startSeed(t, "127.0.0.1", src, []string{"--upload-limit", "1M"}, torrent)
	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--log-level", "debug", "--cache-size", "64M", "--peer", peer, "--cache-dir", t.TempDir())
	checkReadsReleasedByBlocks(t, m, src, mnt, []int64{clipPiece + clipPiece/2, 3*clipPiece + 123<<10})
}

// clipPiece is the piece size of clipTorrent's torrents.
const clipPiece = 4 << 20

// clipTorrent writes a file clip.bin of four 4 MiB pieces (content from seed) under a new
// directory and makes its torrent with `create` and version flag (--hybrid or --v2).
func clipTorrent(t *testing.T, version string, seed uint64) (src, torrent string) {
	t.Helper()
	src = t.TempDir()
	testpeers.WriteFiles(t, src, map[string]int64{"clip.bin": 4 * clipPiece}, seed)
	torrent = filepath.Join(t.TempDir(), "clip.torrent")
	if _, stderr, code := runCmd(t, "create", version, "--piece-size", "4M", "-o", torrent, filepath.Join(src, "clip.bin")); code != 0 {
		t.Fatalf("create %s: exit %d: %s", version, code, stderr)
	}
	return src, torrent
}

// checkReadsReleasedByBlocks reads 16 KiB at each cold offset of clip.bin through the mount
// at mnt, compares the bytes with src's, and waits for the mount's log to say that as
// many reads were released by verified blocks while their pieces were incomplete.
func checkReadsReleasedByBlocks(t *testing.T, m *testutil.Proc, src, mnt string, offs []int64) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(src, "clip.bin"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(mnt, "clip.bin", "clip.bin")
	for _, off := range offs {
		got := sh(t, fmt.Sprintf("dd if=%s bs=16k count=1 skip=%d iflag=skip_bytes status=none", file, off))
		if got != string(want[off:off+16<<10]) {
			t.Fatalf("16 KiB at %d: wrong bytes", off)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the log of reads released by blocks", func() bool {
		return strings.Count(m.Stderr(), "released by verified blocks, piece incomplete") >= len(offs)
	})
}

// TestMountHybridMagnetReleasesBlocks is TestMountHybridReleasesBlocks mounting the hybrid's
// magnet link, with its v1 hash alone and with both: the mount fetches the info dictionary
// and the piece layers from the seeder, and each cold read returns while its piece is
// still incomplete.
func TestMountHybridMagnetReleasesBlocks(t *testing.T) {
	testutil.NeedFUSE(t)
	src, torrent := clipTorrent(t, "--hybrid", 15)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	peer := startSeed(t, "127.0.0.1", src, []string{"--upload-limit", "1M"}, torrent)
	for name, link := range map[string]string{
		"btih":          "magnet:?xt=urn:btih:" + mi.InfoHash.HexString() + "&x.pe=" + peer,
		"btih and btmh": "magnet:?xt=urn:btih:" + mi.InfoHash.HexString() + "&xt=urn:btmh:1220" + mi.InfoHashV2.HexString() + "&x.pe=" + peer,
	} {
		t.Run(name, func(t *testing.T) {
			mnt := filepath.Join(t.TempDir(), "m")
			m := mountAt(t, link, mnt, "--log-level", "debug", "--cache-size", "64M", "--peer", peer, "--cache-dir", t.TempDir())
			// The torrent's directory is named by its hash until the metadata is in.
			waitFiles(t, filepath.Join(mnt, "clip.bin"), 30*time.Second)
			checkReadsReleasedByBlocks(t, m, src, mnt, []int64{clipPiece + clipPiece/3, 3*clipPiece + 321<<10})
			if !strings.Contains(m.Stderr(), "got the piece layers") {
				t.Errorf("no piece layers fetched:\n%s", m.Stderr())
			}
		})
	}
}

// TestMountV2OnlyReleasesBlocks is TestMountHybridReleasesBlocks for a v2-only torrent: 16 KiB
// reads at cold offsets of a torrent with 4 MiB pieces, from our seeder sending 1 MiB/s,
// return with the right bytes while their pieces are incomplete.
func TestMountV2OnlyReleasesBlocks(t *testing.T) {
	testutil.NeedFUSE(t)
	src, torrent := clipTorrent(t, "--v2", 14)
	peer := startSeed(t, "127.0.0.1", src, []string{"--upload-limit", "1M"}, torrent)
	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--log-level", "debug", "--cache-size", "64M", "--peer", peer, "--cache-dir", t.TempDir())
	checkReadsReleasedByBlocks(t, m, src, mnt, []int64{clipPiece + clipPiece/2, 3*clipPiece + 123<<10})
}
