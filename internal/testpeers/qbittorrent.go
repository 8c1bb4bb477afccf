package testpeers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// qbHTTP keeps no idle connections, so no transport goroutine outlives a test.
var qbHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// QBittorrent is a running qbittorrent-nox whose WebUI API listens on loopback.
type QBittorrent struct {
	Proc *testutil.Proc
	Port int    // BitTorrent listen port
	API  string // WebUI base URL, e.g. http://127.0.0.1:PORT
}

// StartQBittorrent starts qbittorrent-nox with a fresh profile: BitTorrent on ip over TCP
// only, DHT, LSD, PEX and port forwarding off, queueing off (every added torrent runs), and
// the WebUI on 127.0.0.1 without login for loopback clients. Add torrents with AddTorrent.
func StartQBittorrent(t testing.TB, ip string) *QBittorrent {
	t.Helper()
	return StartQBittorrentLimited(t, ip, 0)
}

// StartQBittorrentLimited is StartQBittorrent with a global upload limit in bytes per
// second (0: none). qBittorrent maps every address, loopback included, to libtorrent's
// global peer class unless told to ignore limits on the LAN, so the limit applies here.
func StartQBittorrentLimited(t testing.TB, ip string, upload int) *QBittorrent {
	t.Helper()
	testutil.Need(t, "qbittorrent-nox")
	profile := t.TempDir()
	port := FreePort(t, ip)
	webPort := FreePort(t, "127.0.0.1")
	// qBittorrent 4.5 reads these keys; it writes back what it understood on exit.
	conf := fmt.Sprintf(`[LegalNotice]
Accepted=true

[BitTorrent]
Session\DHTEnabled=false
Session\LSDEnabled=false
Session\PeXEnabled=false
Session\Port=%d
Session\Interface=lo
Session\InterfaceName=lo
Session\InterfaceAddress=%s
Session\BTProtocol=TCP
Session\QueueingSystemEnabled=false
Session\AddTorrentPaused=false
Session\TempPathEnabled=false
Session\Encryption=0
Session\GlobalUPSpeedLimit=%d
Session\IgnoreLimitsOnLAN=false

[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\Address=127.0.0.1
WebUI\Port=%d
WebUI\LocalHostAuth=false
WebUI\HostHeaderValidation=false
WebUI\CSRFProtection=false
WebUI\UseUPnP=false
Connection\UPnP=false
Connection\ResolvePeerCountries=false
`, port, ip, upload/1024, webPort)
	dir := filepath.Join(profile, "qBittorrent", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "qBittorrent.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	q := &QBittorrent{Port: port, API: "http://127.0.0.1:" + strconv.Itoa(webPort)}
	q.Proc = testutil.Start(t, "qbittorrent-nox", "--profile="+profile)
	testutil.WaitFor(t, 30*time.Second, "qBittorrent's WebUI did not answer", func() bool {
		if q.Proc.Exited() {
			t.Fatalf("qbittorrent-nox exited:\n%s", q.Proc.Output())
		}
		resp, err := qbHTTP.Get(q.API + "/api/v2/app/version")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return q
}

// AddTorrent adds the .torrent file at path, saving its data under dir.
func (q *QBittorrent) AddTorrent(t testing.TB, path, dir string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("torrents", filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	w.WriteField("savepath", dir)
	w.WriteField("paused", "false")
	w.Close()
	resp, err := qbHTTP.Post(q.API+"/api/v2/torrents/add", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatalf("add torrent to qBittorrent: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(msg) != "Ok." {
		t.Fatalf("add torrent to qBittorrent: %s: %s", resp.Status, msg)
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
		resp, err := qbHTTP.Get(q.API + "/api/v2/torrents/info")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var ts []struct {
			State    string  `json:"state"`
			Progress float64 `json:"progress"`
		}
		if json.NewDecoder(resp.Body).Decode(&ts) != nil || len(ts) == 0 {
			return false
		}
		for _, tr := range ts {
			if tr.Progress < 1 || !strings.HasSuffix(tr.State, "UP") && tr.State != "uploading" {
				return false
			}
		}
		return true
	})
}
