package swarm_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/tracker"
)

// Transmission drops every 127/8 address a tracker gives it, so on loopback it never dials
// anyone (see internal/testpeers/transmission.go). Our client must learn its address from
// the tracker and dial it, so Transmission announces first: our client re-announces only at
// the tracker's interval, half an hour for opentracker.

// waitTracker polls the tracker's scrape until it counts at least seeds seeders and peers
// peers in all for infoHash.
func waitTracker(t *testing.T, announceURL string, infoHash [20]byte, seeds, peers int) {
	t.Helper()
	var last tracker.ScrapeStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := tracker.Scrape(ctx, announceURL, [][20]byte{infoHash})
		cancel()
		if err == nil {
			last = st[infoHash]
			if last.Complete >= seeds && last.Complete+last.Incomplete >= peers {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker counts %d seeders and %d leechers after 30s (last error %v); want %d seeders, %d peers",
				last.Complete, last.Incomplete, err, seeds, peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// trackedTorrent makes the multi-file test torrent announced to a fresh opentracker.
func trackedTorrent(t *testing.T, files map[string]int64, pieceLen int64) (src, torrent, announce string, mi *metainfo.MetaInfo) {
	t.Helper()
	src = t.TempDir()
	// The tracker needs the hash in its whitelist before it starts, and the hash does not
	// depend on the tracker URL.
	mi0, _ := makeTorrent(t, src, "multi", files, pieceLen)
	announce, _ = testpeers.Opentracker(t, mi0.InfoHash)
	mi, torrent = makeTorrent(t, src, "multi", files, pieceLen, announce)
	return src, torrent, announce, mi
}

// getFrom has a client download a tracked torrent of files whole from the seeder that seed
// starts on the .torrent and its data, and checks the data.
func getFrom(t *testing.T, files map[string]int64, pieceLen int64, seed func(torrent, src string)) (*swarm.Torrent, *metainfo.MetaInfo) {
	t.Helper()
	src, torrent, announce, mi := trackedTorrent(t, files, pieceLen)
	seed(torrent, src)
	// It checks the data before it announces as a seeder.
	waitTracker(t, announce, mi.InfoHash, 1, 1)

	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	return tr, mi
}

func TestTransmissionDownloadsFromUs(t *testing.T) {
	// Mostly waiting on third-party clients' timers: run alongside the others.
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	src, torrent, announce, mi := trackedTorrent(t, multiFile, 64<<10)
	out := t.TempDir()
	trans, _ := testpeers.Transmission(t, torrent, out, "127.0.0.22")
	waitTracker(t, announce, mi.InfoHash, 0, 1)

	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, src, true, swarm.TorrentConfig{})
	testutil.WaitFor(t, 60*time.Second, "transmission did not get every file", func() bool {
		return testpeers.TransmissionHas(filepath.Join(src, "multi"), filepath.Join(out, "multi")) || trans.Exited()
	})
	if trans.Exited() {
		t.Fatalf("transmission exited early")
	}
	if up := tr.Stats().Uploaded; up < mi.Info.TotalLength {
		t.Errorf("we uploaded %d bytes, want the whole torrent (%d)", up, mi.Info.TotalLength)
	}
}

func TestGetFromTransmissionSeeder(t *testing.T) {
	// Mostly waiting on third-party clients' timers: run alongside the others.
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	var trans *testutil.Proc
	tr, mi := getFrom(t, multiFile, 64<<10, func(torrent, src string) {
		trans, _ = testpeers.Transmission(t, torrent, src, "127.0.0.23")
	})
	if s := tr.Stats(); s.Downloaded < mi.Info.TotalLength {
		t.Errorf("downloaded %d bytes, want at least %d", s.Downloaded, mi.Info.TotalLength)
	}
	if trans.Exited() {
		t.Errorf("transmission exited early")
	}
}

// TestTransmissionBatchesDeepenThePipeline: a Transmission with an upload limit sends in
// bursts every half second, each what we had asked up to its quota for the half second.
// A fresh peer's pipeline (minPipeline) is below that quota, so a burst brings every
// request we had out, and the pipeline must deepen at once (noteBatch), not a tick or
// two later.
func TestTransmissionBatchesDeepenThePipeline(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	// 4 MiB at 1 MB/s: about eight bursts of some 30 blocks, against 16 requests out.
	tr, _ := getFrom(t, map[string]int64{"video.bin": 4 << 20}, 256<<10, func(torrent, src string) {
		testpeers.TransmissionWith(t, torrent, src, testpeers.TransmissionOpts{IP: "127.0.0.28", UploadLimit: 1_000_000})
	})
	if n := tr.BatchBoosts(); n == 0 {
		t.Error("no batch deepened the pipeline at the rate-limited Transmission seeder")
	}
}

// qBittorrent (libtorrent) dials the 127.0.0.1 peers a tracker gives it, unlike
// Transmission, so here we seed first and it finds us.
func TestQBittorrentDownloadsFromUs(t *testing.T) {
	// Mostly waiting on third-party clients' timers: run alongside the others.
	t.Parallel()
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, _, mi := trackedTorrent(t, multiFile, 64<<10)
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, src, true, swarm.TorrentConfig{})

	q := testpeers.StartQBittorrent(t, "127.0.0.24")
	out := t.TempDir()
	q.AddTorrent(t, torrent, out)
	testutil.WaitFor(t, 60*time.Second, "qBittorrent did not get every file", func() bool {
		return testpeers.TreeMatches(filepath.Join(src, "multi"), filepath.Join(out, "multi")) || q.Proc.Exited()
	})
	if q.Proc.Exited() {
		t.Fatalf("qbittorrent-nox exited early")
	}
	if up := tr.Stats().Uploaded; up < mi.Info.TotalLength {
		t.Errorf("we uploaded %d bytes, want the whole torrent (%d)", up, mi.Info.TotalLength)
	}
}

func TestGetFromQBittorrentSeeder(t *testing.T) {
	// Mostly waiting on third-party clients' timers: run alongside the others.
	t.Parallel()
	testutil.Need(t, "qbittorrent-nox")
	tr, mi := getFrom(t, multiFile, 64<<10, func(torrent, src string) {
		testpeers.StartQBittorrent(t, "127.0.0.25").AddTorrent(t, torrent, src)
	})
	if s := tr.Stats(); s.Downloaded < mi.Info.TotalLength {
		t.Errorf("downloaded %d bytes, want at least %d", s.Downloaded, mi.Info.TotalLength)
	}
}
