package swarm_test

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/swarm"
	"torrentfs/utp"
)

// utpSocket opens a uTP socket on ip:port (0: a free one).
func utpSocket(t *testing.T, ip string, port int) *utp.Socket {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	s := utp.NewSocket(pc, testutil.Log(t).WithField("part", "utp"))
	t.Cleanup(func() { s.Close() })
	return s
}

func udpPort(s *utp.Socket) int { return s.Addr().(*net.UDPAddr).Port }

// Two clients with TCP off: the download goes over uTP.
func TestGetOverUTPOnly(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{NoTCP: true, UTP: utpSocket(t, "127.0.0.31", 0)})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	if seeder.Port() == 0 {
		t.Fatal("a uTP-only client has no port")
	}

	out := t.TempDir()
	c := newClient(t, swarm.ClientConfig{NoTCP: true, UTP: utpSocket(t, "127.0.0.32", 0)})
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.31"), seeder.Port())}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// A client with both transports reaches a uTP-only seeder: its TCP dial is refused and
// uTP follows at once.
func TestGetFallsBackToUTP(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{NoTCP: true, UTP: utpSocket(t, "127.0.0.33", 0)})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})

	out := t.TempDir()
	us := utpSocket(t, "127.0.0.34", 0)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.34:" + strconv.Itoa(udpPort(us)), UTP: us})
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.33"), seeder.Port())}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// Clients with both transports on still download (over whichever handshake completes
// first), both ways of dialing: TCP first for a new address.
func TestGetBothTransports(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	ss := utpSocket(t, "127.0.0.35", 0)
	seeder := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.35:" + strconv.Itoa(udpPort(ss)), UTP: ss})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})

	out := t.TempDir()
	us := utpSocket(t, "127.0.0.36", 0)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.36:" + strconv.Itoa(udpPort(us)), UTP: us})
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.35"), seeder.Port())}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// libtorrent, uTP only, downloads from our uTP-only seeder (it dials us).
func TestLibtorrentGetsOverUTP(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, torrent := makeTorrent(t, src, "multi", multiFile, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{NoTCP: true, UTP: utpSocket(t, "127.0.0.51", 0)})
	tr := addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	out := t.TempDir()
	p := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.52", Torrent: torrent, SaveDir: out,
		UTPOnly: true, Peers: []string{"127.0.0.51:" + strconv.Itoa(int(seeder.Port()))}})
	testpeers.LibtorrentWait(t, p, "finished", 120*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if up := tr.Stats().Uploaded; up < 4<<20 {
		t.Errorf("we uploaded %d bytes, want the whole torrent", up)
	}
}

// Our uTP-only client downloads from libtorrent seeding over uTP only (we dial it).
func TestGetFromLibtorrentOverUTP(t *testing.T) {
	testpeers.NeedLibtorrent(t)
	src := t.TempDir()
	mi, torrent := makeTorrent(t, src, "multi", multiFile, 32<<10)
	port := testpeers.FreePort(t, "127.0.0.53")
	p := testpeers.Libtorrent(t, testpeers.LibtorrentOpts{IP: "127.0.0.53", Port: port, Torrent: torrent,
		SaveDir: src, Seed: true, UTPOnly: true})
	testpeers.LibtorrentWait(t, p, "seeding", 60*time.Second)
	out := t.TempDir()
	c := newClient(t, swarm.ClientConfig{NoTCP: true, UTP: utpSocket(t, "127.0.0.54", 0)})
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.53"), uint16(port))}})
	waitComplete(t, tr, 120*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}
