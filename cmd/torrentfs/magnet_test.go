package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// magnetOf is the magnet link of a .torrent with x.pe pointing at peer.
func magnetOf(t *testing.T, torrent, peer string) string {
	t.Helper()
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	return "magnet:?xt=urn:btih:" + mi.InfoHash.HexString() + "&dn=whatever&x.pe=" + peer
}

func TestGetMagnet(t *testing.T) {
	torrent, data, _ := fixture(t, "set", tfile{"a/one.bin", 700 << 10}, tfile{"two.bin", 300<<10 + 5})
	link := magnetOf(t, torrent, seeder(t, torrent, data))
	out := t.TempDir()
	got := runGet(t, "--no-trackers", "--out", out, link)
	if !strings.Contains(got, "fetching metadata...") || !strings.Contains(got, "downloaded") {
		t.Errorf("get printed:\n%s", got)
	}
	testpeers.SameTree(t, filepath.Join(data, "set"), filepath.Join(out, "set"))
}

func TestMountMagnet(t *testing.T) {
	testutil.NeedFUSE(t)
	torrent, data, _ := fixture(t, "set", tfile{"a/one.bin", 700 << 10}, tfile{"two.bin", 300<<10 + 5})
	link := magnetOf(t, torrent, seeder(t, torrent, data))
	mnt := filepath.Join(t.TempDir(), "mnt")
	p := mountAt(t, link, mnt, "--cache-dir", t.TempDir())
	waitFiles(t, filepath.Join(mnt, "set"), 30*time.Second)
	if !strings.Contains(p.Stderr(), "fetching metadata") {
		t.Errorf("mount did not say it fetched the metadata:\n%s", p.Stderr())
	}
	for _, f := range []string{"a/one.bin", "two.bin"} {
		sh(t, "cmp "+filepath.Join(data, "set", f)+" "+filepath.Join(mnt, "set", f))
	}
}

func TestSeedRefusesMagnet(t *testing.T) {
	link := "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
	out, err := exec.Command(torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0", "--data", t.TempDir(), link).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("seed of a magnet: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), ".torrent file, not a magnet link") {
		t.Errorf("unclear error:\n%s", out)
	}
}
