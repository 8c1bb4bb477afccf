package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// End-to-end tests of `get` and `seed` as a user runs them: the built binary, real peers.

var cliFiles = map[string]int64{
	"docs/a.txt":      5000,
	"docs/deep/b.bin": 300<<10 + 7,
	"empty":           0,
	"c.bin":           1 << 20,
}

func writeTorrent(t *testing.T, src string, trackers ...string) (*metainfo.MetaInfo, string) {
	t.Helper()
	testpeers.WriteFiles(t, filepath.Join(src, "set"), cliFiles, 7)
	var tiers [][]string
	for _, u := range trackers {
		tiers = append(tiers, []string{u})
	}
	mi, data, err := metainfo.Create(context.Background(), filepath.Join(src, "set"), metainfo.CreateOptions{Announce: tiers, PieceLength: 32 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "set.torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, path
}

// runGet runs `torrentfs get` to completion and returns its output.
func runGet(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, torrentfsBin(t), append([]string{"get", "--no-dht", "--no-lsd", "--no-port-map", "--listen", "127.0.0.1:0"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("torrentfs get: %v\n%s", err, out)
	}
	return string(out)
}

func TestGetFromOurSeed(t *testing.T) {
	src := t.TempDir()
	_, torrent := writeTorrent(t, src)
	port := testpeers.FreePort(t, "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", addr, "--data", src, torrent)
	testutil.WaitListening(t, addr, 10*time.Second)
	out := t.TempDir()
	got := runGet(t, "--no-trackers", "--peer", addr, "--out", out, torrent)
	if !strings.Contains(got, "downloaded") {
		t.Errorf("get printed no summary:\n%s", got)
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	if fi, err := os.Stat(filepath.Join(out, "set", "empty")); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file is missing: %v", err)
	}
	// A second get finds everything on disk and downloads nothing.
	if got := runGet(t, "--no-trackers", "--out", out, torrent); !strings.Contains(got, "downloaded") {
		t.Errorf("second get:\n%s", got)
	}
	// SIGTERM ends the seeder with status 0.
	seed.Cmd.Process.Signal(os.Interrupt)
	if err := seed.Wait(t, 10*time.Second); err != nil {
		t.Errorf("seed after Ctrl-C: %v\n%s", err, seed.Output())
	}
}

func TestGetFromAria2ViaUDPTracker(t *testing.T) {
	testutil.Need(t, "aria2c", "opentracker")
	src := t.TempDir()
	mi0, _ := writeTorrent(t, src)
	_, udpURL := testpeers.Opentracker(t, mi0.InfoHash)
	_, torrent := writeTorrent(t, src, udpURL)
	testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: "127.0.0.31", UDPTracker: true, Seed: true})
	out := t.TempDir()
	runGet(t, "--out", out, torrent)
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
}

func TestSeedWithoutDataFails(t *testing.T) {
	_, torrent := writeTorrent(t, t.TempDir())
	out, err := exec.Command(torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0", "--data", t.TempDir(), torrent).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("seed with no data: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "no data") {
		t.Errorf("unclear error:\n%s", out)
	}
}
