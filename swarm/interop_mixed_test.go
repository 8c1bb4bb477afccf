package swarm_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// TestMixedSwarm runs one aria2c seeder, two of our clients and one Transmission, all
// downloading at once through opentracker. The seeder's upload is limited so that the
// downloaders must trade among themselves; it checks that everyone completes with the
// right bytes and that Transmission got blocks from our clients.
func TestMixedSwarm(t *testing.T) {
	// Mostly waiting on third-party clients' timers: run alongside the others.
	t.Parallel()
	testutil.Need(t, "aria2c")
	src, torrent, announce, mi := trackedTorrent(t, multiFile, 64<<10)

	// Transmission dials nobody on loopback (see interop_transmission_test.go): it announces
	// first so that the others learn its address from their own first announce.
	deep := filepath.Join(t.TempDir(), "transmission-deep.log")
	transOut := t.TempDir()
	trans, _ := testpeers.TransmissionWith(t, torrent, transOut, testpeers.TransmissionOpts{IP: "127.0.0.26", DeepLog: deep})
	waitTracker(t, announce, mi.InfoHash, 0, 1)
	// aria2c re-announces every 2 s (testpeers.Aria2), so it finds everyone on its own.
	seed, _ := testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: "127.0.0.27", Seed: true, UploadLimit: "512K"})
	waitTracker(t, announce, mi.InfoHash, 1, 2)

	var ours []*swarm.Torrent
	var outs []string
	for k, ip := range []string{"127.0.0.31", "127.0.0.32"} {
		// Transmission keeps one connection per IP, so each of ours dials from its own.
		c := newClient(t, swarm.ClientConfig{DialAddr: netip.MustParseAddr(ip)})
		out := t.TempDir()
		ours = append(ours, addTorrent(t, c, mi, out, false, swarm.TorrentConfig{}))
		outs = append(outs, out)
		// The second learns the first from the tracker only if the first announced already.
		waitTracker(t, announce, mi.InfoHash, 1, 3+k)
	}

	deadline := time.Now().Add(40 * time.Second)
	for k, tr := range ours {
		waitComplete(t, tr, time.Until(deadline))
		testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(outs[k], "multi"))
	}
	testutil.WaitFor(t, time.Until(deadline), "transmission did not get every file", func() bool {
		return testpeers.TransmissionHas(filepath.Join(src, "multi"), filepath.Join(transOut, "multi")) || trans.Exited()
	})
	if trans.Exited() || seed.Exited() {
		t.Fatalf("a third-party client exited early (transmission %v, aria2c %v)", trans.Exited(), seed.Exited())
	}

	var up int64
	var report string
	for k, tr := range ours {
		s := tr.Stats()
		up += s.Uploaded
		report += fmt.Sprintf(" ours[%d] down %d up %d;", k, s.Downloaded, s.Uploaded)
	}
	fromUs := testpeers.TransmissionBlocksFrom(t, deep, "-TF0001-")
	if up == 0 || fromUs == 0 {
		t.Errorf("our clients uploaded %d bytes and Transmission got %d blocks from them; want both > 0;%s",
			up, fromUs, report)
	}
	if testing.Verbose() {
		t.Logf("Transmission got %d blocks from our clients;%s", fromUs, report)
	}
}
