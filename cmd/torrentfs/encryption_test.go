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
	q.WaitSeeding(t, 60*time.Second)
	out := t.TempDir()
	got := runGet(t, "--encryption", "require", "--no-trackers", "--peer", "127.0.0.97:"+strconv.Itoa(q.Port), "--out", out, torrent)
	if !strings.Contains(got, "downloaded") {
		t.Errorf("get printed no summary:\n%s", got)
	}
	testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
}
