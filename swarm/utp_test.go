package swarm_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

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
	s := utp.NewSocket(pc, utpLog(t, ip))
	t.Cleanup(func() { s.Close() })
	return s
}

// utpLog is the log of a test's uTP socket on ip. With UTP_TRACE=PREFIX it traces every
// packet sent and received to the file PREFIX.ip instead, for chasing a stall with a
// third-party peer: the test's own log would drown in them.
func utpLog(t *testing.T, ip string) *logrus.Entry {
	prefix := os.Getenv("UTP_TRACE")
	if prefix == "" {
		return testutil.Log(t).WithField("part", "utp")
	}
	f, err := os.Create(prefix + "." + ip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l := logrus.New()
	l.SetOutput(f)
	l.SetLevel(logrus.TraceLevel)
	l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000000"})
	return logrus.NewEntry(l)
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

// dialEvents records, in order, the dial events of a client's debug log: every transport
// try that failed ("dial try failed", by transport) and every connection made.
type dialEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *dialEvents) Levels() []logrus.Level { return logrus.AllLevels }

func (r *dialEvents) Fire(e *logrus.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Message {
	case "dial try failed":
		r.events = append(r.events, fmt.Sprintf("failed %v: %v", e.Data["transport"], e.Data[logrus.ErrorKey]))
	case "peer connected":
		r.events = append(r.events, fmt.Sprintf("connected %v", e.Data["encryption"]))
	}
	return nil
}

func (r *dialEvents) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// A TCP-only peer that drops encrypted handshakes (here one of ours with encryption off; a
// Transmission with encryption 0 was seen doing it) gets the plaintext redial at once over
// TCP from a client with uTP on, not after the uTP try, which such a peer never answers,
// times out (secondTryTimeout, 5 s).
func TestPlaintextFallbackDoesNotWaitForUTP(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	seeder := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.37:0", Encryption: swarm.EncryptionOff})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})

	var rec dialEvents
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testutil.Log(t).Logger.Out)
	}
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(&rec)
	us := utpSocket(t, "127.0.0.38", 0)
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.38:" + strconv.Itoa(udpPort(us)), UTP: us,
		Log: logrus.NewEntry(l)})
	out := t.TempDir()
	start := time.Now()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.37"), seeder.Port())}})
	testutil.WaitFor(t, 30*time.Second, "a connection to the seeder", func() bool {
		for _, e := range rec.snapshot() {
			if strings.HasPrefix(e, "connected") {
				return true
			}
		}
		return false
	})
	took := time.Since(start)
	ev := rec.snapshot()
	t.Logf("connected after %v; events: %q", took, ev)
	// Before the connection: the refused encrypted try over TCP, and no failed uTP try
	// (the one the old policy waited for).
	for _, e := range ev {
		if strings.HasPrefix(e, "connected") {
			if e != "connected none" {
				t.Errorf("%s, want a plaintext connection", e)
			}
			break
		}
		if !strings.HasPrefix(e, "failed tcp: encryption handshake") {
			t.Errorf("before the connection: %s", e)
		}
	}
	if len(ev) == 0 || !strings.HasPrefix(ev[0], "failed tcp: encryption handshake") {
		t.Errorf("the first event is not the refused encrypted handshake over TCP: %q", ev)
	}
	// A generous bound that still tells "at once" from "after the 5 s uTP timeout".
	if took > 3*time.Second {
		t.Errorf("connected only after %v", took)
	}
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}
