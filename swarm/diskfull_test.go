package swarm_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/cache"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// fullDiskSwarm seeds a one-file torrent of size bytes from our own engine and returns it
// with its data, the seeder's address and a small tmpfs for the downloader's storage.
func fullDiskSwarm(t *testing.T, size, pieceLen int64, disk string) (*metainfo.MetaInfo, []byte, netip.AddrPort, string) {
	t.Helper()
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "full", map[string]int64{"a.bin": size}, pieceLen)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	return mi, readTorrentData(t, mi, src), seeder.Addr().(*net.TCPAddr).AddrPort(), testutil.SmallDisk(t, disk)
}

// A full disk is our problem, never the peers': the cache shrinks to what the disk holds,
// reads of every piece go on, in order, and no honest seeder is banned.
func TestDiskFullShrinksCacheAndReadsGoOn(t *testing.T) {
	mi, data, seed, disk := fullDiskSwarm(t, 6<<20, 64<<10, "2m")
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, disk, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{seed}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	buf := make([]byte, 100<<10) // not piece aligned: reads span two pieces
	for off := int64(0); off < mi.Info.TotalLength; off += int64(len(buf)) {
		n, err := tr.ReadAt(ctx, buf, off)
		if err != nil {
			t.Fatalf("read at %d with the disk full: %v", off, err)
		}
		if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
			t.Fatalf("read at %d returned wrong bytes", off)
		}
	}
	s := tr.Stats()
	if s.Banned != 0 {
		t.Errorf("%d peers banned for our own full disk", s.Banned)
	}
	if s.Err != nil {
		t.Errorf("the torrent stopped: %v", s.Err)
	}
	if s.BytesDone > 2<<20 {
		t.Errorf("%d bytes held on a 2 MiB disk", s.BytesDone)
	}
}

// Pieces larger than the disk: a read that needs one fails with ENOSPC within seconds
// instead of hanging.
func TestReadThatCannotFitFails(t *testing.T) {
	mi, _, seed, disk := fullDiskSwarm(t, 8<<20, 4<<20, "2m")
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, disk, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{seed}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := tr.ReadAt(ctx, make([]byte, 4096), 0)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("read of a piece bigger than the disk: %v after %v, want ENOSPC", err, time.Since(start))
	}
	t.Logf("failed after %v: %v", time.Since(start), err)
	if s := tr.Stats(); s.Banned != 0 {
		t.Errorf("%d peers banned for our own full disk", s.Banned)
	}
}

// A download that must keep everything (get) stops on a full disk with a clear error and
// no peer blamed; once space is freed, a new run resumes and fetches only what was missing.
func TestDiskFullStopsDownloadThenResumes(t *testing.T) {
	mi, _, seed, disk := fullDiskSwarm(t, 6<<20, 64<<10, "2m")
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, disk, false, swarm.TorrentConfig{
		Trackers: [][]string{}, Peers: []netip.AddrPort{seed}, StopOnDiskFull: true,
	})
	testutil.WaitFor(t, 30*time.Second, "the download to stop on the full disk", func() bool { return tr.Stats().Err != nil })
	s := tr.Stats()
	if !strings.Contains(s.Err.Error(), "disk full") {
		t.Errorf("error %q does not say the disk is full", s.Err)
	}
	if s.Banned != 0 {
		t.Errorf("%d peers banned for our own full disk", s.Banned)
	}
	tr.Close()
	c.Close()
	testutil.GrowDisk(t, disk, "16m")
	// What survived is counted from a check of its own before the new run starts: the new
	// torrent's first stats snapshot may already include pieces it fetched.
	kept := keptBytes(t, mi, disk)
	c2 := newClient(t, swarm.ClientConfig{})
	tr2 := addTorrent(t, c2, mi, disk, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{seed}})
	if kept == 0 {
		t.Fatal("nothing verified survived the full disk")
	}
	waitComplete(t, tr2, 30*time.Second)
	if got, want := tr2.Stats().Downloaded, mi.Info.TotalLength-kept; got != want {
		t.Errorf("the resumed run downloaded %d bytes, want %d (total %d, kept %d)", got, want, mi.Info.TotalLength, kept)
	}
}

// keptBytes checks the pieces stored under dir and returns the bytes of those that verify.
func keptBytes(t *testing.T, mi *metainfo.MetaInfo, dir string) int64 {
	t.Helper()
	store, err := cache.Open(dir, mi, cache.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	have, err := store.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for i := range have.Len() {
		if have.Has(i) {
			n += mi.Info.PieceSize(i)
		}
	}
	return n
}
