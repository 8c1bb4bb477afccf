package testpeers

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/qbit"
	"torrentfs/internal/testutil"
)

// QBittorrent is a running qbittorrent-nox whose WebUI API listens on loopback.
type QBittorrent struct {
	Proc *testutil.Proc
	Port int    // BitTorrent listen port
	API  string // WebUI base URL, e.g. http://127.0.0.1:PORT
}

// StartQBittorrent starts qbittorrent-nox with a fresh profile (see qbit.WriteProfile):
// BitTorrent on ip over TCP only, on loopback, no discovery. Add torrents with AddTorrent.
func StartQBittorrent(t testing.TB, ip string) *QBittorrent {
	t.Helper()
	return StartQBittorrentLimited(t, ip, 0)
}

// StartQBittorrentLimited is StartQBittorrent with a global upload limit in bytes per
// second (0: none), which applies to loopback peers too.
func StartQBittorrentLimited(t testing.TB, ip string, upload int) *QBittorrent {
	t.Helper()
	return StartQBittorrentProfile(t, qbit.Profile{IP: ip, Upload: int64(upload)})
}

// StartQBittorrentProfile is StartQBittorrent with the settings of p (its IP, upload limit,
// encryption policy...); free ports are picked for a zero Port or WebPort.
func StartQBittorrentProfile(t testing.TB, p qbit.Profile) *QBittorrent {
	t.Helper()
	testutil.Need(t, "qbittorrent-nox")
	if p.Port == 0 {
		p.Port = FreePort(t, p.IP)
	}
	if p.WebPort == 0 {
		p.WebPort = FreePort(t, "127.0.0.1")
	}
	return startQBittorrent(t, p, nil, "127.0.0.1")
}

// StartQBittorrentIn starts qbittorrent-nox in test host h (a network namespace, see
// internal/netns) with the settings of p: BitTorrent on h's address and eth0, port 6881,
// and its WebUI on h's address, port 8080 (a fresh namespace has every port free).
func StartQBittorrentIn(t testing.TB, h *netns.Host, p qbit.Profile) *QBittorrent {
	t.Helper()
	testutil.Need(t, "qbittorrent-nox")
	p.IP, p.Interface, p.WebAddress = h.IP.String(), "eth0", h.IP.String()
	p.Port, p.WebPort = 6881, 8080
	return startQBittorrent(t, p, h.Prefix(), h.IP.String())
}

// startQBittorrent writes p's profile, starts qbittorrent-nox behind prefix and waits for
// its WebUI on webHost.
func startQBittorrent(t testing.TB, p qbit.Profile, prefix []string, webHost string) *QBittorrent {
	t.Helper()
	profile := t.TempDir()
	if err := p.Write(profile); err != nil {
		t.Fatal(err)
	}
	q := &QBittorrent{Port: p.Port, API: "http://" + webHost + ":" + strconv.Itoa(p.WebPort)}
	argv := append(append(append([]string{}, prefix...), "qbittorrent-nox"), "--profile="+filepath.Clean(profile))
	q.Proc = testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 30*time.Second, "qBittorrent's WebUI", func() bool {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		return qbit.Up(q.API)
	})
	return q
}

// AddTorrent adds the .torrent file at path, saving its data under dir.
func (q *QBittorrent) AddTorrent(t testing.TB, path, dir string) {
	t.Helper()
	if err := qbit.Add(q.API, path, dir); err != nil {
		t.Fatal(err)
	}
}

// WaitSeeding waits until qBittorrent has checked every torrent's data and seeds it: before
// that it resets connections for the torrent at the handshake.
func (q *QBittorrent) WaitSeeding(t testing.TB, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, "qBittorrent to seed its torrents", func() bool {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		return qbit.Seeding(q.API)
	})
}

// WaitHandshake waits until qBittorrent, listening on ip, answers a plaintext handshake
// for the torrent with info-hash ih with its own: right after WaitSeeding it may still
// reset such connections (seen with hybrids), and a peer whose first dial failed waits
// 15 s and more before it tries again.
func (q *QBittorrent) WaitHandshake(t testing.TB, ip string, ih [20]byte, d time.Duration) {
	t.Helper()
	addr := net.JoinHostPort(ip, strconv.Itoa(q.Port))
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(append(hs, ih[:]...), []byte("-XX0001-testprobe123")...)
	start, tries := time.Now(), 0
	defer func() {
		if tries > 1 {
			t.Logf("qBittorrent answered a handshake after %d tries, %v after it said it seeds", tries, time.Since(start).Round(time.Millisecond))
		}
	}()
	testutil.WaitFor(t, d, "qBittorrent to answer a handshake", func() bool {
		tries++
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(hs); err != nil {
			return false
		}
		got := make([]byte, 48)
		if _, err := io.ReadFull(c, got); err != nil {
			time.Sleep(100 * time.Millisecond)
			return false
		}
		return bytes.Equal(got[28:48], ih[:])
	})
}
