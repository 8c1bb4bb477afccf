package swarm_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// TestReserveWhileReading: while a reader has wants, one of three seeders is kept for due
// blocks (the log says which); the background download goes on through the others and the
// torrent completes.
func TestReserveWhileReading(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "res", map[string]int64{"a.bin": 32 << 20}, 64<<10)
	var seeds []netip.AddrPort
	for range 3 {
		s := newClient(t, swarm.ClientConfig{UploadLimit: 1 << 20})
		addTorrent(t, s, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		seeds = append(seeds, s.Addr().(*net.TCPAddr).AddrPort())
	}
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: seeds})
	testutil.WaitFor(t, 30*time.Second, "three unchoked seeders", func() bool { return tr.Stats().Peers == 3 })
	// A reader wants the last piece, due now.
	last := mi.Info.NumPieces() - 1
	tr.SetWants(1, last, []time.Time{time.Now()})
	testutil.WaitFor(t, 30*time.Second, "a seeder reserved for due blocks", func() bool {
		n := 0
		for _, p := range tr.Peers(context.Background()) {
			if strings.Contains(p.Flags, "R") {
				n++
			}
		}
		return n == 1
	})
	waitComplete(t, tr, 60*time.Second)
	tr.SetWants(1, 0, nil)
}
