package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// freeUDPPort is a UDP port free on ip when asked.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// `get --no-tcp` from `seed --no-tcp`: the whole download goes over uTP.
func TestGetOverUTPFromOurSeed(t *testing.T) {
	src := t.TempDir()
	_, torrent := writeTorrent(t, src)
	addr := "127.0.0.41:" + strconv.Itoa(freeUDPPort(t, "127.0.0.41"))
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--no-tcp",
		"--listen", addr, "--data", src, torrent)
	testutil.WaitFor(t, 30*time.Second, "the seed to start", func() bool { return strings.Contains(seed.Output(), "seeding") })
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := exec.CommandContext(ctx, torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-tcp",
		"--listen", "127.0.0.42:0", "--no-trackers", "--peer", addr, "--out", out, torrent).CombinedOutput()
	if err != nil {
		t.Fatalf("torrentfs get: %v\n%s\nseed:\n%s", err, got, seed.Output())
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
}

// --no-tcp and --no-utp together leave nothing: a usage error.
func TestNoTransportRefused(t *testing.T) {
	out, err := exec.Command(torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-tcp", "--no-utp",
		"--listen", "127.0.0.1:0", "x.torrent").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no way to reach peers") {
		t.Fatalf("got %v:\n%s", err, out)
	}
}
