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

// transmissionPeers polls Transmission's peer list until done holds, collecting every
// connection it shows to ip.
func transmissionPeers(t *testing.T, d *testpeers.TransmissionDaemon, ip string, dur time.Duration, what string, done func() bool) []testpeers.TransmissionPeer {
	t.Helper()
	var seen []testpeers.TransmissionPeer
	testutil.WaitFor(t, dur, what, func() bool {
		if d.Proc.Exited() {
			t.Fatalf("transmission-daemon exited: %v\n%s", d.Proc.Err(), d.Proc.Output())
		}
		if ts, err := d.Torrents(); err == nil {
			for _, tr := range ts {
				for _, p := range tr.Peers {
					if p.Address == ip {
						seen = append(seen, p)
					}
				}
			}
		}
		return done()
	})
	return seen
}

// wantUTP checks that Transmission listed a connection to us and that each went over uTP.
func wantUTP(t *testing.T, peers []testpeers.TransmissionPeer) {
	t.Helper()
	if len(peers) == 0 {
		t.Fatal("Transmission never listed our connection")
	}
	for _, p := range peers {
		if !p.IsUTP {
			t.Fatalf("Transmission lists our connection %s:%d (flags %q) as TCP, want uTP", p.Address, p.Port, p.FlagStr)
		}
	}
	t.Logf("Transmission's view of us: %s:%d flags %q uTP %v encrypted %v", peers[0].Address, peers[0].Port,
		peers[0].FlagStr, peers[0].IsUTP, peers[0].IsEncrypted)
}

// transmissionFiles is data for the Transmission tests: no empty file (it never makes
// one), over a megabyte so that an upload limit stretches a transfer over seconds.
var transmissionFiles = map[string]int64{"a.bin": 256<<10 + 4321, "sub/b.bin": 100 << 10}

// Transmission 3.00 with µTP on and encryption required downloads from our uTP-only seed.
// Transmission never dials 127/8 addresses, so our seed dials it (--peer); with --no-tcp
// that dial can only be uTP, and Transmission's RPC says the connection is uTP and
// encrypted. Its TCP needs no blocking: nothing here can reach it over TCP. The connection
// outlives the transfer's start by seconds (Transmission 3.00 asks for nothing for about
// 7 s after the handshake, over TCP too), so its peer list shows it.
//
// Found with these tests: Transmission 3.00's µTP works on loopback (utp-enabled, on its
// peer port's UDP socket), but with encryption 1 (prefer, its default) it hangs up our MSE
// handshake over µTP (not over TCP), and our dial falls back to plaintext over µTP at once;
// with encryption 2 it takes MSE over µTP.
func TestTransmissionGetsOverUTPFromOurSeed(t *testing.T) {
	testutil.Need(t, "transmission-daemon")
	_, torrent, src := mountTorrentFiles(t, "set", transmissionFiles, 64<<10)
	out := t.TempDir()
	d := testpeers.StartTransmissionDaemon(t, out, testpeers.TransmissionOpts{IP: "127.0.0.44", UTP: true, Encryption: 2})
	d.Add(t, torrent, out)
	addr := "127.0.0.43:" + strconv.Itoa(freeUDPPort(t, "127.0.0.43"))
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--no-tcp",
		"--log-level", "debug", "--listen", addr, "--peer", "127.0.0.44:"+strconv.Itoa(d.Port), "--data", src, torrent)
	peers := transmissionPeers(t, d, "127.0.0.43", 60*time.Second, "Transmission to get every file", func() bool {
		if seed.Exited() {
			t.Fatalf("seed exited: %v\n%s", seed.Err(), seed.Output())
		}
		return testpeers.TransmissionHas(filepath.Join(src, "set"), filepath.Join(out, "set"))
	})
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	wantUTP(t, peers)
	for _, p := range peers {
		if !p.IsEncrypted {
			t.Errorf("Transmission lists our connection (flags %q) as not encrypted", p.FlagStr)
		}
	}
}

// `get --no-tcp` and a mount with --no-tcp download from Transmission 3.00 seeding with
// µTP on (its encryption default, 1: it hangs up our MSE handshake over µTP and we redial
// in plaintext); Transmission's RPC says each connection is uTP. It unchokes a new peer
// only at its next rechoke (about 8 s), so the get's connection stays long enough for its
// peer list to show it; the mount stays connected.
func TestGetAndMountOverUTPFromTransmission(t *testing.T) {
	testutil.Need(t, "transmission-daemon")
	testutil.NeedFUSE(t)
	_, torrent, src := mountTorrentFiles(t, "set", transmissionFiles, 64<<10)
	d := testpeers.StartTransmissionDaemon(t, src, testpeers.TransmissionOpts{IP: "127.0.0.45", UTP: true})
	d.Add(t, torrent, src)
	d.WaitSeeding(t, 60*time.Second)
	peer := "127.0.0.45:" + strconv.Itoa(d.Port)

	out := t.TempDir()
	get := testutil.Start(t, torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-tcp", "--log-level", "debug",
		"--listen", "127.0.0.46:0", "--no-trackers", "--peer", peer, "--out", out, torrent)
	peers := transmissionPeers(t, d, "127.0.0.46", 60*time.Second, "the download", get.Exited)
	if err := get.Err(); err != nil {
		t.Fatalf("torrentfs get: %v\n%s", err, get.Output())
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	wantUTP(t, peers)

	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--no-tcp", "--listen", "127.0.0.47:0", "--cache-dir", t.TempDir(), "--peer", peer)
	sum := testutil.Start(t, "sha256sum", filepath.Join(mnt, "set", "a.bin"))
	if err := mountWaitReader(t, sum, m, 60*time.Second); err != nil {
		t.Fatalf("sha256sum through the mount: %v\n%s", err, sum.Stderr())
	}
	if got, want := strings.Fields(sum.Stdout())[0], fileSHA256(t, filepath.Join(src, "set", "a.bin")); got != want {
		t.Fatalf("sha256 through the mount %s, want %s", got, want)
	}
	wantUTP(t, transmissionPeers(t, d, "127.0.0.47", 10*time.Second, "Transmission to list the mount", func() bool { return true }))
}
