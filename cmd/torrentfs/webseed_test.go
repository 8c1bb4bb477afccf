package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"torrentfs/internal/testpeers"
)

// Web seeds (BEP 19) end to end: Debian's nginx on a loopback address serves a torrent's
// data directory, and get and mount fetch from it alone or beside real peers.

// webTorrent makes a torrent of the fixture's data (under data/<name>) with the given
// url-list; extra goes to create (e.g. --hybrid).
func webTorrent(t *testing.T, data, name string, webSeeds []string, extra ...string) string {
	t.Helper()
	torrent := filepath.Join(t.TempDir(), name+".torrent")
	args := append([]string{"create", "-piece-size", "256K", "-o", torrent}, extra...)
	for _, u := range webSeeds {
		args = append(args, "--web-seed", u)
	}
	out, err := exec.Command(torrentfsBin(t), append(args, filepath.Join(data, name))...).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	return torrent
}

// sameContent checks every file under dir against content by SHA-256.
func sameContent(t *testing.T, dir string, content map[string][]byte) {
	t.Helper()
	for rel, want := range content {
		got := fileSHA256(t, filepath.Join(dir, rel))
		if w := sha256.Sum256(want); got != hex.EncodeToString(w[:]) {
			t.Errorf("%s: sha256 %s, want %x", rel, got, w)
		}
	}
}

var webSeedsField = regexp.MustCompile(`web_seeds=(\d+)`)
var downloadedField2 = regexp.MustCompile(`downloaded=(\d+)`)

// sessionBytes reads get's session line: bytes downloaded, and of them from web seeds.
func sessionBytes(t *testing.T, log string) (down, web int64) {
	t.Helper()
	d, w := downloadedField2.FindStringSubmatch(log), webSeedsField.FindStringSubmatch(log)
	if d == nil || w == nil {
		t.Fatalf("no session line in get's log:\n%s", log)
	}
	down, _ = strconv.ParseInt(d[1], 10, 64)
	web, _ = strconv.ParseInt(w[1], 10, 64)
	return down, web
}

var webFiles = []tfile{{"docs/read me.txt", 70 << 10}, {"été/日本 #1.bin", 1<<20 + 3}, {"video/a+b.mkv", 3<<20 + 517}, {"z/empty", 0}}

// (1) get with no peers at all, only the web seed: a multi-file torrent (and its hybrid,
// whose pad files are no files on the server) and a single-file one.
func TestGetWebSeedOnly(t *testing.T) {
	_, data, content := fixture(t, "web set", webFiles...)
	ng := testpeers.StartNginx(t, data, testpeers.NginxOpts{IP: "127.0.0.41"})
	for _, extra := range [][]string{nil, {"--hybrid"}} {
		torrent := webTorrent(t, data, "web set", []string{ng.URL}, extra...)
		out := t.TempDir()
		log := runGet(t, "--no-trackers", "--out", out, torrent)
		sameContent(t, out, content)
		down, web := sessionBytes(t, log)
		if down == 0 || web != down {
			t.Errorf("%v: downloaded %d, %d of it from the web seed; want all", extra, down, web)
		}
	}
	_, sdata, scontent := fixture(t, "single", tfile{"", 2<<20 + 99})
	ng2 := testpeers.StartNginx(t, sdata, testpeers.NginxOpts{IP: "127.0.0.42"})
	torrent := webTorrent(t, sdata, "single", []string{ng2.URL + "single"}) // the file itself
	torrent2 := webTorrent(t, sdata, "single", []string{ng2.URL})           // a trailing '/': the name is added
	for _, tor := range []string{torrent, torrent2} {
		out := t.TempDir()
		runGet(t, "--no-trackers", "--out", out, tor)
		sameContent(t, out, scontent)
	}
	if !strings.Contains(ng.Log(), `" 206 `) {
		t.Errorf("nginx answered no range request:\n%s", ng.Log())
	}
}

// (2) a slow peer (our seed with an upload limit) beside a rate-limited web seed: both
// contribute. nginx's limit_rate lets each request's first second through at once, so
// the rate is set low enough that the peer's share is sure.
func TestGetWebSeedAndSlowPeer(t *testing.T) {
	_, data, content := fixture(t, "both", tfile{"a.bin", 4 << 20}, tfile{"b.bin", 2<<20 + 5})
	ng := testpeers.StartNginx(t, data, testpeers.NginxOpts{IP: "127.0.0.43", RateLimit: "200k"})
	torrent := webTorrent(t, data, "both", []string{ng.URL})
	peer := startSeed(t, "127.0.0.44", data, []string{"--no-web-seeds", "--upload-limit", "1M"}, torrent)
	out := t.TempDir()
	log := runGet(t, "--no-trackers", "--peer", peer, "--out", out, torrent)
	sameContent(t, out, content)
	down, web := sessionBytes(t, log)
	if web == 0 || down-web <= 0 {
		t.Errorf("downloaded %d, %d of it from the web seed: want both sources to contribute\n%s", down, web, log)
	}
}

// (3) a mount reads a file far into the torrent with only a web seed.
func TestMountWebSeedFarRead(t *testing.T) {
	_, data, content := fixture(t, "far", tfile{"first.bin", 6 << 20}, tfile{"middle.bin", 5 << 20}, tfile{"last.bin", 1<<20 + 77})
	ng := testpeers.StartNginx(t, data, testpeers.NginxOpts{IP: "127.0.0.45"})
	torrent := webTorrent(t, data, "far", []string{ng.URL})
	mnt := filepath.Join(t.TempDir(), "mnt")
	m := mountAt(t, torrent, mnt, "--cache-dir", t.TempDir(), "--cache-size", "4M")
	got := sh(t, "sha256sum < '"+filepath.Join(mnt, "far", "last.bin")+"'")
	want := sha256.Sum256(content[filepath.Join("far", "last.bin")])
	if !strings.HasPrefix(got, hex.EncodeToString(want[:])) {
		t.Errorf("last.bin through the mount: %s, want %x", got, want)
	}
	// A read in the middle of a file, by offset.
	mid := sh(t, "dd if='"+filepath.Join(mnt, "far", "middle.bin")+"' bs=64k skip=40 count=3 status=none | sha256sum")
	wm := sha256.Sum256(content[filepath.Join("far", "middle.bin")][40*64<<10 : 43*64<<10])
	if !strings.HasPrefix(mid, hex.EncodeToString(wm[:])) {
		t.Errorf("middle.bin at 2.5 MiB: %s, want %x", mid, wm)
	}
	if m.Exited() {
		t.Fatalf("mount exited: %s", m.Stderr())
	}
}

// (4) a web seed whose copy is corrupted: its pieces fail the hash, it is rested (and
// says so), and a real peer finishes the download.
func TestGetWebSeedCorrupted(t *testing.T) {
	_, data, content := fixture(t, "bad", tfile{"a.bin", 3 << 20}, tfile{"b.bin", 1<<20 + 11})
	bad := filepath.Join(t.TempDir(), "www")
	if err := os.CopyFS(bad, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	// One flipped byte in every piece of the copy: whatever the web seed sends is bad.
	for rel, b := range content {
		c := append([]byte(nil), b...)
		for off := 1000; off < len(c); off += 256 << 10 {
			c[off] ^= 0x5a
		}
		if err := os.WriteFile(filepath.Join(bad, rel), c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ng := testpeers.StartNginx(t, bad, testpeers.NginxOpts{IP: "127.0.0.46"})
	torrent := webTorrent(t, data, "bad", []string{ng.URL})
	// A slow peer, so the web seed surely sends something before the peer has it all.
	peer := startSeed(t, "127.0.0.47", data, []string{"--no-web-seeds", "--upload-limit", "1M"}, torrent)
	out := t.TempDir()
	log := runGet(t, "--no-trackers", "--peer", peer, "--out", out, torrent)
	sameContent(t, out, content)
	if !strings.Contains(log, "web seed failed") || !strings.Contains(log, "failed verification") {
		t.Errorf("no warning that the web seed sent bad data:\n%s", log)
	}
	if !strings.Contains(ng.Log(), `" 206 `) {
		t.Errorf("the web seed was never asked:\n%s", ng.Log())
	}
}

// (5) web seeds that answer 404 or 500, or refuse connections: no crash, a rest, and the
// download completes from a peer.
func TestGetWebSeedErrors(t *testing.T) {
	_, data, content := fixture(t, "errs", tfile{"a.bin", 2 << 20}, tfile{"b.bin", 300 << 10})
	ng := testpeers.StartNginx(t, data, testpeers.NginxOpts{IP: "127.0.0.47",
		Locations: "location /gone/ { return 404; }\n\t\tlocation /broken/ { return 500; }"})
	refused := "http://127.0.0.48:" + strconv.Itoa(testpeers.FreePort(t, "127.0.0.48")) + "/"
	torrent := webTorrent(t, data, "errs", []string{ng.URL + "gone/", ng.URL + "broken/", refused})
	peer := seeder(t, torrent, data)
	out := t.TempDir()
	log := runGet(t, "--no-trackers", "--peer", peer, "--out", out, torrent)
	sameContent(t, out, content)
	for _, want := range []string{"HTTP 404", "HTTP 500", "connection refused"} {
		if !strings.Contains(log, want) {
			t.Errorf("no web seed failure with %q logged:\n%s", want, log)
		}
	}
	if !strings.Contains(log, "not using it for") {
		t.Errorf("no rest logged:\n%s", log)
	}
}
