package swarm_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"torrentfs/swarm"
)

// A mounted torrent (ForReaders) reserves a peer as soon as enough peers have unchoked it,
// with no tick and no read yet: the reserved peer's quota is then untouched by the
// background download when the first read comes (a qBittorrent seeder's first quota went
// to the background, and a mount's first read waited for its next 500 ms tick).
func TestMountReservesOnUnchoke(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	var peers []netip.AddrPort
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 61+i)
		// Slow seeders: the download must not be over before the check.
		s := newClient(t, swarm.ClientConfig{ListenAddr: ip + ":0", UploadLimit: 64 << 10})
		addTorrent(t, s, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		peers = append(peers, netip.AddrPortFrom(netip.MustParseAddr(ip), s.Port()))
	}
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.64:0"})
	cfg := swarm.TorrentConfig{Trackers: [][]string{}, Peers: peers, ForReaders: true}
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.WithTickEvery(cfg, time.Hour))
	end := time.Now().Add(15 * time.Second)
	for {
		var flags []string
		for _, p := range tr.Peers(context.Background()) {
			if strings.ContainsRune(p.Flags, 'R') {
				return
			}
			flags = append(flags, p.Addr+" "+p.Flags)
		}
		if time.Now().After(end) {
			t.Fatalf("no peer reserved 15 s after the mount started, with no tick: %v", flags)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
