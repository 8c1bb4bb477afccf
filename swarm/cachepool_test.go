package swarm_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// Two torrents share a pool's bound: reading the second evicts the first's least recently
// read pieces, not its own.
func TestCachePoolEvictsOldestOfAnyTorrent(t *testing.T) {
	const piece = 64 << 10
	src := t.TempDir()
	miA, _ := makeTorrent(t, src, "a", map[string]int64{"a.bin": 16 * piece}, piece)
	miB, _ := makeTorrent(t, src, "b", map[string]int64{"b.bin": 16 * piece}, piece)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, miA, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	addTorrent(t, seeder, miB, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	peers := []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}

	pool := swarm.NewCachePool(8 * piece)
	t.Cleanup(pool.Close)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.2:0"})
	cfg := swarm.TorrentConfig{Trackers: [][]string{}, Peers: peers, Pool: pool, NoBackground: true}
	ta := addTorrent(t, c, miA, t.TempDir(), false, cfg)
	tb := addTorrent(t, c, miB, t.TempDir(), false, cfg)
	read := func(tr *swarm.Torrent, first, last int) {
		t.Helper()
		buf := make([]byte, piece)
		for i := first; i <= last; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := tr.ReadAt(ctx, buf, int64(i)*piece)
			cancel()
			if err != nil {
				t.Fatalf("read piece %d: %v", i, err)
			}
		}
	}
	has := func(tr *swarm.Torrent) (out []int) {
		for i := range 16 {
			if tr.HasPiece(i) {
				out = append(out, i)
			}
		}
		return out
	}
	read(ta, 0, 15) // a keeps its 8 most recent: 8..15
	read(ta, 12, 13)
	testutil.WaitFor(t, 5*time.Second, "a to keep 8 pieces", func() bool { return len(has(ta)) == 8 })
	read(tb, 0, 3)
	testutil.WaitFor(t, 5*time.Second, "the pool back under its bound", func() bool {
		return pool.Used() <= pool.Bound() && len(has(tb)) == 4
	})
	// a's oldest reads (8..11) went; 12 and 13, read again, stayed.
	got := has(ta)
	if len(got) != 4 || got[0] != 12 || got[1] != 13 || got[2] != 14 || got[3] != 15 {
		t.Errorf("a keeps %v, want [12 13 14 15]", got)
	}
	if got := has(tb); len(got) != 4 {
		t.Errorf("b keeps %v", got)
	}
}
