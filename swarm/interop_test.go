package swarm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/cache"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// These tests run real third-party clients on loopback; scripts/test runs them in a
// network namespace with only lo up.

var multiFile = map[string]int64{
	"a/one.bin":   1<<20 + 512<<10,
	"a/b/two.bin": 700<<10 + 3,
	"empty.txt":   0,
	"four.bin":    2 << 20,
	"été/日本.dat":  100 << 10,
}

// makeTorrent writes files under dir/name and a .torrent of them with the given trackers.
func makeTorrent(t *testing.T, dir, name string, files map[string]int64, pieceLen int64, trackers ...string) (*metainfo.MetaInfo, string) {
	t.Helper()
	root := filepath.Join(dir, name)
	testpeers.WriteFiles(t, root, files, 42)
	var tiers [][]string
	for _, u := range trackers {
		tiers = append(tiers, []string{u})
	}
	mi, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{Announce: tiers, PieceLength: pieceLen, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, path
}

func newClient(t *testing.T, cfg swarm.ClientConfig) *swarm.Client {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	if cfg.Log == nil {
		cfg.Log = testutil.Log(t)
	}
	c, err := swarm.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addTorrent opens storage under dir, checks it and adds the torrent to c.
func addTorrent(t *testing.T, c *swarm.Client, mi *metainfo.MetaInfo, dir string, readOnly bool, cfg swarm.TorrentConfig) *swarm.Torrent {
	t.Helper()
	store, err := cache.Open(dir, mi, cache.Options{ReadOnly: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	have, err := store.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage, cfg.Have = store, have
	tr, err := c.AddTorrent(mi, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func waitComplete(t *testing.T, tr *swarm.Torrent, d time.Duration) {
	t.Helper()
	select {
	case <-tr.Complete():
	case <-time.After(d):
		s := tr.Stats()
		t.Fatalf("download incomplete after %v: %d/%d pieces, %d peers", d, s.PiecesDone, s.Pieces, s.Peers)
	}
}

func TestGetFromAria2SeederHTTPTracker(t *testing.T) {
	testGetFromAria2(t, false, 1)
}

func TestGetFromAria2SeederUDPTracker(t *testing.T) {
	testGetFromAria2(t, true, 1)
}

func TestGetFromTwoAria2Seeders(t *testing.T) {
	testGetFromAria2(t, false, 2)
}

func testGetFromAria2(t *testing.T, udp bool, seeders int) {
	testutil.Need(t, "aria2c", "opentracker")
	src := t.TempDir()
	// Create first with a placeholder tracker to learn the info-hash, then for real: the
	// tracker needs the hash in its whitelist before it starts.
	mi0, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	httpURL, udpURL := testpeers.Opentracker(t, mi0.InfoHash)
	announce := httpURL
	if udp {
		announce = udpURL
	}
	mi, torrent := makeTorrent(t, src, "multi", multiFile, 64<<10, announce)
	if mi.InfoHash != mi0.InfoHash {
		t.Fatal("info-hash depends on the tracker")
	}
	var seeds []*testutil.Proc
	for k := range seeders {
		ip := []string{"127.0.0.11", "127.0.0.12"}[k]
		p, _ := testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: ip, UDPTracker: udp, Seed: true})
		seeds = append(seeds, p)
	}
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if s := tr.Stats(); s.Downloaded < mi.Info.TotalLength {
		t.Errorf("downloaded %d bytes, want at least %d", s.Downloaded, mi.Info.TotalLength)
	}
	for _, p := range seeds {
		if p.Exited() {
			t.Errorf("aria2c seeder exited early:\n%s", p.Output())
		}
	}
}

// seedAlone starts our engine as the only seeder of a fresh multi-file torrent announced
// to opentracker; it returns the torrent file, the data dir and our torrent.
func seedAlone(t *testing.T, files map[string]int64, pieceLen int64) (string, string, *swarm.Torrent) {
	t.Helper()
	src := t.TempDir()
	mi0, _ := makeTorrent(t, src, "multi", files, pieceLen)
	httpURL, _ := testpeers.Opentracker(t, mi0.InfoHash)
	mi, torrent := makeTorrent(t, src, "multi", files, pieceLen, httpURL)
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, src, true, swarm.TorrentConfig{})
	select {
	case <-tr.Complete():
	default:
		t.Fatal("seeder's data is not complete")
	}
	return torrent, src, tr
}

func TestSeedToAria2(t *testing.T) {
	torrent, src, tr := seedAlone(t, multiFile, 64<<10)
	out := t.TempDir()
	p, _ := testpeers.Aria2(t, torrent, out, testpeers.Aria2Opts{IP: "127.0.0.21"})
	if err := p.Wait(t, 60*time.Second); err != nil {
		t.Fatalf("aria2c: %v", err)
	}
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if up := tr.Stats().Uploaded; up < 4<<20 {
		t.Errorf("we uploaded %d bytes, want the whole torrent", up)
	}
}
