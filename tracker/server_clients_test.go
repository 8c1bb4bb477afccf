package tracker

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestServerWithClients runs the package's own clients against the server over both
// protocols: the two halves must agree on the wire, not only each with a hand-written peer.
func TestServerWithClients(t *testing.T) {
	srv := startSrvTestServer(t, ServerConfig{Interval: 5 * time.Minute})
	for _, scheme := range []string{"http", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			c, err := NewClient(fmt.Sprintf("%s://127.0.0.1:%d/announce", scheme, srv.port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ih := srvTestHash(map[string]byte{"http": 50, "udp": 51}[scheme])
			seed := AnnounceRequest{InfoHash: ih, PeerID: srvTestPeerID(1), Port: 7001, Left: 0, Event: EventStarted, NumWant: -1, Compact: true, IP: netip.MustParseAddr("127.0.0.11")}
			if _, err := c.Announce(t.Context(), seed); err != nil {
				t.Fatalf("seeder announce: %v", err)
			}
			leech := AnnounceRequest{InfoHash: ih, PeerID: srvTestPeerID(2), Port: 7002, Left: 99, Event: EventStarted, NumWant: -1, Compact: true, IP: netip.MustParseAddr("127.0.0.12")}
			resp, err := c.Announce(t.Context(), leech)
			if err != nil {
				t.Fatalf("leecher announce: %v", err)
			}
			if resp.Interval != 5*time.Minute || resp.Complete != 1 || resp.Incomplete != 1 {
				t.Errorf("reply %+v, want interval 5m, 1 seeder, 1 leecher", resp)
			}
			if len(resp.Peers) != 1 || resp.Peers[0].Addr != netip.MustParseAddrPort("127.0.0.11:7001") {
				t.Errorf("peers %+v, want the seeder at 127.0.0.11:7001", resp.Peers)
			}
			stats, err := c.Scrape(t.Context(), [][20]byte{ih})
			if err != nil {
				t.Fatalf("scrape: %v", err)
			}
			if got, want := stats[ih], (ScrapeStats{Complete: 1, Incomplete: 1}); got != want {
				t.Errorf("scrape %+v, want %+v", got, want)
			}
			// A failure reason reaches the caller as an error.
			bad := leech
			bad.Port = 0
			if _, err := c.Announce(t.Context(), bad); err == nil {
				t.Error("announce with port 0 succeeded")
			}
		})
	}
}
