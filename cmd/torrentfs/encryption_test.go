package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// TestEncryptionFlagUsage: every engine command refuses an unknown --encryption with a
// usage error before it touches the network.
func TestEncryptionFlagUsage(t *testing.T) {
	for _, args := range [][]string{
		{"get", "--encryption", "always", "--no-dht", "--no-lsd", "x.torrent"},
		{"seed", "--encryption", "RC4", "--no-dht", "--no-lsd", "x.torrent"},
		{"mount", "--encryption", "", "--no-dht", "--no-lsd", "x.torrent", t.TempDir()},
	} {
		t.Run(args[0], func(t *testing.T) {
			stdout, stderr, code := runCmd(t, args...)
			if code != 2 || !strings.Contains(stderr, "want prefer, require or off") {
				t.Errorf("exit %d, want 2 and a usage error\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}

// TestGetEncryptedFromQBittorrent: `get --encryption require` downloads from a qBittorrent
// that requires encryption too.
func TestGetEncryptedFromQBittorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src := t.TempDir()
	_, torrent := writeTorrent(t, src)
	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: "127.0.0.97", Encryption: 1})
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 120*time.Second)
	out := t.TempDir()
	got := runGet(t, "--encryption", "require", "--no-trackers", "--peer", "127.0.0.97:"+strconv.Itoa(q.Port), "--out", out, torrent)
	if !strings.Contains(got, "downloaded") {
		t.Errorf("get printed no summary:\n%s", got)
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
}

// qbitPeerFlags polls qBittorrent's peer list of torrent hash until done holds, collecting
// the flags of every connection to ip past its handshake (a client name known: before that
// libtorrent lists a connection being made without its encryption flags). A transfer's
// connection may be gone by the time it is done: a seed drops a seed.
func qbitPeerFlags(t *testing.T, q *testpeers.QBittorrent, hash, ip string, d time.Duration, what string, done func() bool) []string {
	t.Helper()
	seen := map[string]bool{}
	var flags []string
	testutil.WaitFor(t, d, what, func() bool {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		if peers, err := qbit.Peers(q.API, hash); err == nil {
			for _, p := range peers {
				if p.IP == ip && p.Client != "" && !seen[p.Flags] {
					seen[p.Flags] = true
					flags = append(flags, p.Flags)
				}
			}
		}
		return done()
	})
	return flags
}

// wantUTPEncrypted checks that qBittorrent showed a connection and flagged every one P
// (uTP) and E (RC4-encrypted).
func wantUTPEncrypted(t *testing.T, flags []string) {
	t.Helper()
	if len(flags) == 0 {
		t.Fatal("qBittorrent never listed our connection")
	}
	for _, f := range flags {
		p := qbit.Peer{Flags: f}
		if !p.HasFlag("P") || !p.HasFlag("E") {
			t.Errorf("qBittorrent's flags for our connection are %q, want P (uTP) and E (encrypted)", f)
		}
	}
}

// qBittorrent, uTP only and encryption required, downloads from our uTP-only seed (it
// dials us; we offer RC4 or plaintext and it picks RC4). Our seed's upload limit makes the
// transfer last long enough for qBittorrent's peer list to show the connection.
func TestQBittorrentGetsEncryptedOverUTP(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src := t.TempDir()
	mi, torrent := writeTorrent(t, src)
	addr := "127.0.0.83:" + strconv.Itoa(freeUDPPort(t, "127.0.0.83"))
	seed := testutil.Start(t, torrentfsBin(t), "seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--no-tcp",
		"--upload-limit", "512K", "--listen", addr, "--data", src, torrent)
	testutil.WaitFor(t, 30*time.Second, "the seed to start", func() bool { return strings.Contains(seed.Output(), "seeding") })

	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: "127.0.0.84", Encryption: 1, Protocol: "UTP"})
	out := t.TempDir()
	q.AddTorrent(t, torrent, out)
	hash := mi.InfoHash.HexString()
	// The torrent is unknown to the WebUI until qBittorrent has loaded it.
	testutil.WaitFor(t, 30*time.Second, "qBittorrent to take our seed as a peer", func() bool {
		return qbit.AddPeers(q.API, hash, addr) == nil
	})
	flags := qbitPeerFlags(t, q, hash, "127.0.0.83", 120*time.Second, "qBittorrent to get every file", func() bool {
		return testpeers.TreeMatches(filepath.Join(src, "set"), filepath.Join(out, "set"))
	})
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	t.Logf("qBittorrent's flags for our seed: %q", flags)
	wantUTPEncrypted(t, flags)
}

// `get --no-tcp` downloads from qBittorrent seeding over uTP only with encryption required.
// Its upload limit makes the transfer last long enough for its peer list to show us.
func TestGetEncryptedOverUTPFromQBittorrent(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	src := t.TempDir()
	mi, torrent := writeTorrent(t, src)
	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: "127.0.0.85", Encryption: 1, Protocol: "UTP", Upload: 512 << 10})
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 120*time.Second)
	out := t.TempDir()
	get := testutil.Start(t, torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-tcp",
		"--listen", "127.0.0.86:0", "--no-trackers", "--peer", "127.0.0.85:"+strconv.Itoa(q.Port), "--out", out, torrent)
	flags := qbitPeerFlags(t, q, mi.InfoHash.HexString(), "127.0.0.86", 120*time.Second, "the download", get.Exited)
	if err := get.Err(); err != nil {
		t.Fatalf("torrentfs get: %v\n%s", err, get.Output())
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	t.Logf("qBittorrent's flags for us: %q", flags)
	wantUTPEncrypted(t, flags)
}
