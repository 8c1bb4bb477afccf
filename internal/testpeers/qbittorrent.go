package testpeers

import (
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
