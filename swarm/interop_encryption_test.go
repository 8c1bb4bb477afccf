package swarm_test

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// Real clients with encryption required (MSE/PE, RC4 only) trade with our engine, also
// requiring it, in both directions where the client dials out on loopback.

// requireClient is one of our clients with encryption required, recording its connections.
func requireClient(t *testing.T, rec *connRecorder) *swarm.Client {
	t.Helper()
	return newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionRequire, Log: recordingLog(t, rec)})
}

// wantOnlyRC4 checks that rec saw connections and every one was RC4-encrypted.
func wantOnlyRC4(t *testing.T, rec *connRecorder) {
	t.Helper()
	methods, _, _, _ := rec.snapshot()
	if len(methods) == 0 {
		t.Fatal("no peer connection was logged")
	}
	for _, m := range methods {
		if m != "rc4" {
			t.Errorf("a connection went over %s, want rc4 (all: %v)", m, methods)
		}
	}
}

func ipPort(t *testing.T, ip string, port int) netip.AddrPort {
	t.Helper()
	return netip.MustParseAddrPort(ip + ":" + strconv.Itoa(port))
}

// qBittorrent dials the peers its tracker lists, so it finds our seed and connects to us.
func TestEncryptedQBittorrentDownloadsFromUs(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, _, mi := trackedTorrent(t, multiFile, 64<<10)
	var rec connRecorder
	c := requireClient(t, &rec)
	tr := addTorrent(t, c, mi, src, true, swarm.TorrentConfig{})

	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: "127.0.0.91", Encryption: 1})
	out := t.TempDir()
	q.AddTorrent(t, torrent, out)
	testutil.WaitFor(t, 60*time.Second, "qBittorrent did not get every file", func() bool {
		return testpeers.TreeMatches(filepath.Join(src, "multi"), filepath.Join(out, "multi")) || q.Proc.Exited()
	})
	if q.Proc.Exited() {
		t.Fatalf("qbittorrent-nox exited early")
	}
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if up := tr.Stats().Uploaded; up < mi.Info.TotalLength {
		t.Errorf("we uploaded %d bytes, want the whole torrent (%d)", up, mi.Info.TotalLength)
	}
	wantOnlyRC4(t, &rec)
}

func TestEncryptedGetFromQBittorrent(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "qbittorrent-nox")
	src, torrent, _, mi := trackedTorrent(t, multiFile, 64<<10)
	q := testpeers.StartQBittorrentProfile(t, qbit.Profile{IP: "127.0.0.92", Encryption: 1})
	q.AddTorrent(t, torrent, src)
	q.WaitSeeding(t, 60*time.Second)

	var rec connRecorder
	c := requireClient(t, &rec)
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{ipPort(t, "127.0.0.92", q.Port)}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	wantOnlyRC4(t, &rec)
}

// Transmission never dials 127/8 peers: we dial it both when it downloads and when it
// seeds.
func TestEncryptedTransmissionDownloadsFromUs(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	src, torrent, announce, mi := trackedTorrent(t, multiFile, 64<<10)
	out := t.TempDir()
	trans, _ := testpeers.TransmissionWith(t, torrent, out, testpeers.TransmissionOpts{IP: "127.0.0.93", Encryption: 2})
	waitTracker(t, announce, mi.InfoHash, 0, 1)

	var rec connRecorder
	c := requireClient(t, &rec)
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
	wantOnlyRC4(t, &rec)
}

func TestEncryptedGetFromTransmission(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	src, torrent, announce, mi := trackedTorrent(t, multiFile, 64<<10)
	trans, _ := testpeers.TransmissionWith(t, torrent, src, testpeers.TransmissionOpts{IP: "127.0.0.94", Encryption: 2})
	waitTracker(t, announce, mi.InfoHash, 1, 1) // it verifies the data before announcing

	var rec connRecorder
	c := requireClient(t, &rec)
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if trans.Exited() {
		t.Errorf("transmission exited early")
	}
	wantOnlyRC4(t, &rec)
}

// aria2c dials the peers its tracker lists.
func TestEncryptedSeedToAria2(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "aria2c", "opentracker")
	src, torrent, _, mi := trackedTorrent(t, multiFile, 64<<10)
	var rec connRecorder
	c := requireClient(t, &rec)
	addTorrent(t, c, mi, src, true, swarm.TorrentConfig{})
	out := t.TempDir()
	p, _ := testpeers.Aria2(t, torrent, out, testpeers.Aria2Opts{IP: "127.0.0.95", RequireCrypto: true})
	if err := p.Wait(t, 60*time.Second); err != nil {
		t.Fatalf("aria2c: %v", err)
	}
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	wantOnlyRC4(t, &rec)
}

func TestEncryptedGetFromAria2(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "aria2c", "opentracker")
	src, torrent, _, mi := trackedTorrent(t, multiFile, 64<<10)
	_, port := testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: "127.0.0.96", Seed: true, RequireCrypto: true})
	testutil.WaitListening(t, ipPort(t, "127.0.0.96", port).String(), 30*time.Second)

	var rec connRecorder
	c := requireClient(t, &rec)
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{ipPort(t, "127.0.0.96", port)}})
	waitComplete(t, tr, 90*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	wantOnlyRC4(t, &rec)
}
