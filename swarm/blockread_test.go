package swarm_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// A read of a hybrid torrent returns once the blocks under it are verified against their
// BEP 52 hashes, long before its 4 MiB piece could be complete from a seeder sending 1 MiB/s.
func TestReadReleasedByVerifiedBlocks(t *testing.T) {
	const piece = 4 << 20
	src := t.TempDir()
	root := filepath.Join(src, "film")
	testpeers.WriteFiles(t, root, map[string]int64{"film.bin": 3 * piece, "notes.txt": 1000}, 7)
	mi, _, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: piece, NoDate: true, Version: metainfo.Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	seeder := newClient(t, swarm.ClientConfig{UploadLimit: 1 << 20})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.2:0"})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
		NoBackground: true, CacheBytes: 64 << 20, Peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}})
	testutil.WaitFor(t, 10*time.Second, "a v2 connection", func() bool { return tr.NumV2Peers() == 1 })

	want, err := os.ReadFile(filepath.Join(root, "film.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{2*piece - 5000, piece + piece/2 + 12345, 2*piece + 100<<10} {
		buf := make([]byte, 16<<10)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		n, err := tr.ReadAt(ctx, buf, off) // film.bin is the torrent's first file
		cancel()
		p := int(off / piece)
		complete := tr.HasPiece(p)
		if err != nil || n != len(buf) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
		if !bytes.Equal(buf, want[off:off+int64(n)]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
		if complete {
			t.Errorf("read at %d returned after its piece %d was complete: not released by blocks", off, p)
		}
	}
	// The stats snapshot is refreshed every second.
	testutil.WaitFor(t, 5*time.Second, "two reads counted as released by blocks", func() bool { return tr.Stats().BlockReleases >= 2 })
}
