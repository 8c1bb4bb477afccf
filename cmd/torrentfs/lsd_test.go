package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// getOnLAN runs `torrentfs get` on the bridge of nt with no tracker, no DHT and no --peer:
// local service discovery (BEP 14) is its only way to meet the seeder. It checks the data.
func getOnLAN(t *testing.T, nt *netns.Net, torrent, want string) string {
	t.Helper()
	out := t.TempDir()
	argv := []string{"get", "--no-dht", "--no-port-map", "--no-trackers", "--listen", nt.BridgeIP.String() + ":0", "--out", out, torrent}
	p := testutil.Start(t, torrentfsBin(t), argv...)
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("get found no seeder through LSD in 2 minutes:\n%s", p.Output())
	}
	if err := p.Err(); err != nil {
		t.Fatalf("get: %v\n%s", err, p.Output())
	}
	// With no tracker, no DHT and no --peer, LSD is the only way the two could meet: the
	// get heard the seeder's announce, or the seeder heard the get's and dialed it.
	testpeers.SameTree(t, want, filepath.Join(out, filepath.Base(want)))
	return p.Stderr()
}

// Our get finds our seeder on the same LAN by LSD alone.
func TestGetFindsOurSeedByLSD(t *testing.T) {
	torrent, data, _ := fixture(t, "lsd-ours", tfile{"a.bin", 700 << 10}, tfile{"b.bin", 200 << 10})
	nt := netns.New(t, 1)
	h := nt.Hosts[0]
	argv := h.Command(torrentfsBin(t), "seed", "--no-dht", "--no-port-map", "--no-trackers", "--listen", h.IP.String()+":6881", "--data", data, torrent)
	s := testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 20*time.Second, "the seeder to start", func() bool {
		if s.Exited() {
			t.Fatalf("seed exited:\n%s", s.Output())
		}
		return strings.Contains(s.Stdout(), "seeding ")
	})
	getOnLAN(t, nt, torrent, filepath.Join(data, "lsd-ours"))
}

// Our get finds a real qBittorrent seeder (LSD on, DHT and PEX off) by LSD alone.
func TestGetFindsQBittorrentByLSD(t *testing.T) {
	testutil.Need(t, "qbittorrent-nox")
	torrent, data, _ := fixture(t, "lsd-qbittorrent", tfile{"a.bin", 700 << 10}, tfile{"b.bin", 200 << 10})
	nt := netns.New(t, 1)
	h := nt.Hosts[0]
	api := testpeers.StartQBittorrentIn(t, h, qbit.Profile{LSD: true}).API
	if err := qbit.Add(api, torrent, data); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "qBittorrent to seed", func() bool { return qbit.Seeding(api) })
	getOnLAN(t, nt, torrent, filepath.Join(data, "lsd-qbittorrent"))
}
