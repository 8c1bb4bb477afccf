package swarm_test

import (
	"net/netip"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// TestPexFromTransmission: two of our clients connect only to a Transmission seeder; its
// ut_pex tells A about C and A dials C. A seeds and does not listen (Transmission would
// tell C about A too, and two peers dialing each other at once may both drop the pair as
// duplicates); C listens and fetches nothing by itself (NoBackground), so Transmission
// does not flag it a seed, which a seeding A would not dial. Transmission 3.00 sent its
// first ut_pex within a second of the connection and then about once a minute; when the
// first named C by the port C dialed from (before C's extension handshake gave its listen
// port), only the next one, a minute later, let A connect.
func TestPexFromTransmission(t *testing.T) {
	// Mostly waiting on Transmission's timer: run alongside the others.
	t.Parallel()
	testutil.Need(t, "transmission-cli")
	src := t.TempDir()
	mi, torrent := makeTorrent(t, src, "multi", multiFile, 64<<10)
	const tip = "127.0.0.43"
	trans, port := testpeers.TransmissionWith(t, torrent, src, testpeers.TransmissionOpts{IP: tip, PEX: true})
	taddr := netip.AddrPortFrom(netip.MustParseAddr(tip), uint16(port))
	testutil.WaitListening(t, taddr.String(), 30*time.Second)

	cc := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.42:0"})
	tc := addTorrent(t, cc, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{taddr}, NoBackground: true})
	ac, err := swarm.NewClient(swarm.ClientConfig{DialAddr: netip.MustParseAddr("127.0.0.41"), Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ac.Close() })
	ta := addTorrent(t, ac, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{taddr}})

	testutil.WaitFor(t, 180*time.Second, "A did not connect to C through Transmission's PEX", func() bool {
		return ta.Stats().Peers == 2 && tc.Stats().Peers == 2 || trans.Exited()
	})
	if trans.Exited() {
		t.Fatalf("transmission exited early:\n%s", trans.Output())
	}
}
