package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// Priority and seek tests: slow aria2c seeders (512 KiB/s each) give a 32 MiB file in
// 256 KiB pieces, so a whole download takes far longer than the reads under test, and the
// order in which the mount completed pieces (its debug log) shows what it fetched first.

const (
	mountSlowFileSize  = 32 << 20
	mountSlowPieceSize = 256 << 10
)

// mountSlowSeeders makes the single-file torrent "big.bin" and starts two throttled aria2c
// seeders of it; it returns the torrent, the data directory and the seeders' addresses.
func mountSlowSeeders(t *testing.T) (string, string, []string) {
	t.Helper()
	testutil.NeedFUSE(t)
	_, torrent, src := mountTorrentFiles(t, "big.bin", map[string]int64{"": mountSlowFileSize}, mountSlowPieceSize)
	_, addrs := mountAria2Seeders(t, torrent, src, "512K", "127.0.0.11", "127.0.0.12")
	return torrent, src, addrs
}

// TestMountPriorityFarRead reads 64 KiB at 90% of the file while the background download
// is under way: the read's piece must jump ahead of the pieces between the head and 90%.
func TestMountPriorityFarRead(t *testing.T) {
	torrent, src, addrs := mountSlowSeeders(t)
	mnt := filepath.Join(t.TempDir(), "m")
	args := append([]string{"--log-level", "debug", "--cache-dir", t.TempDir()}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)
	// Let the background download get going, so the read has to overtake it rather than
	// find idle peers.
	testutil.WaitFor(t, 15*time.Second, "the first pieces from the seeders", func() bool {
		if m.Exited() {
			t.Fatalf("mount exited: %v\n%s", m.Err(), m.Stderr())
		}
		return len(mountVerified(m)) >= 2
	})
	r := startMountScriptReader(t, filepath.Join(mnt, "big.bin"), src, "big.bin")
	off := int64(mountSlowFileSize) * 9 / 10
	target := int(off / mountSlowPieceSize)
	r.read(t, off, 64<<10, 20*time.Second)

	done := mountVerifiedBefore(t, m, target)
	before := 0
	for p := range mountPieceSet(done) {
		if p < target {
			before++
		}
	}
	t.Logf("when the read at piece %d returned, %d of the %d pieces before it were complete (%d pieces in all)", target, before, target, len(done))
	if before >= target/2 {
		t.Fatalf("the read at 90%% (piece %d) waited for %d of the %d pieces before it: it did not get priority over the background download", target, before, target)
	}
}

// TestMountSeekFarAway reads the head sequentially, so that a readahead window is in
// flight, then reads far away: the far piece must not queue behind the old window.
func TestMountSeekFarAway(t *testing.T) {
	torrent, src, addrs := mountSlowSeeders(t)
	mnt := filepath.Join(t.TempDir(), "m")
	// A bounded cache turns the background download off: only reads and their windows
	// fetch, so the old window is all that competes with the far read.
	args := append([]string{"--log-level", "debug", "--cache-dir", t.TempDir(), "--cache-size", "16M"}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)
	r := startMountScriptReader(t, filepath.Join(mnt, "big.bin"), src, "big.bin")
	const seq = 1 << 20
	for off := int64(0); off < seq; off += 64 << 10 {
		r.read(t, off, 64<<10, 20*time.Second)
	}
	// The main window is MinWindow (4 MiB) beyond the read position.
	done := mountPieceSet(mountVerified(m))
	var window []int
	for p := seq / mountSlowPieceSize; p < (seq+4<<20)/mountSlowPieceSize; p++ {
		if !done[p] {
			window = append(window, p)
		}
	}
	if len(window) < 8 {
		t.Fatalf("only %d pieces of the readahead window were still missing after the sequential reads; the test needs a window in flight", len(window))
	}

	off := int64(mountSlowFileSize) * 6 / 10
	far := int(off / mountSlowPieceSize)
	r.read(t, off, 64<<10, 20*time.Second)
	earlier := mountPieceSet(mountVerifiedBefore(t, m, far))
	ahead := 0
	for _, p := range window {
		if earlier[p] {
			ahead++
		}
	}
	t.Logf("the far piece %d completed after %d of the %d window pieces that were missing at the seek", far, ahead, len(window))
	if ahead > len(window)/2 {
		t.Fatalf("the far piece %d completed after %d of the old window's %d missing pieces: the seek waited for the old window's requests to drain", far, ahead, len(window))
	}
}

// mountVerifiedBefore waits for piece p in the mount's record of verified pieces and returns
// the pieces verified before it, in order. The engine logs a piece before it answers the
// reads waiting for it, but the log reaches the test through a pipe: a read can return
// before its line is read, so the test waits for the line, not for the order of two outputs.
func mountVerifiedBefore(t *testing.T, m *testutil.Proc, p int) []int {
	t.Helper()
	var order []int
	pos := -1
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("piece %d in the mount's record", p), func() bool {
		order = mountVerified(m)
		pos = slices.Index(order, p)
		return pos >= 0
	})
	return order[:pos]
}
