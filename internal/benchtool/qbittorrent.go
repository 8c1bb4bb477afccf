package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// qbHTTP talks to qBittorrent's WebUI on loopback and keeps no idle connections.
var qbHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// startQBittorrent starts a qbittorrent-nox seeder (libtorrent 2.0, the client most of a
// real swarm runs) with a fresh profile under dir: BitTorrent on ip:port over TCP only;
// DHT, LSD, PEX, encryption and port mapping off; a global upload limit of limit bytes/s
// (0: none) that covers loopback peers too (qBittorrent maps every address to libtorrent's
// global peer class unless told to ignore limits on the LAN). It adds torrent with its
// data under saveDir and returns once the WebUI took it; the tracker says when it seeds.
func startQBittorrent(ctx context.Context, name, logPath, dir, ip string, port int, limit int64, torrent, saveDir string) (*proc, error) {
	webPort, err := freePort()
	if err != nil {
		return nil, err
	}
	// qBittorrent takes a relative save path as relative to its own downloads folder.
	if saveDir, err = filepath.Abs(saveDir); err != nil {
		return nil, err
	}
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
`, port, ip, limit/1024, webPort)
	confDir := filepath.Join(dir, "qBittorrent", "config")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(confDir, "qBittorrent.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(name, logPath, "qbittorrent-nox", "--profile="+dir)
	if err != nil {
		return nil, err
	}
	api := "http://127.0.0.1:" + strconv.Itoa(webPort)
	err = poll(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		if p.exited() {
			return true
		}
		resp, err := qbHTTP.Get(api + "/api/v2/app/version")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err == nil && p.exited() {
		err = fmt.Errorf("exited: %v", p.err)
	}
	if err == nil {
		err = qbAdd(api, torrent, saveDir)
	}
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("qbittorrent-nox %s: %w (log %s)", name, err, logPath)
	}
	return p, nil
}

// qbAdd adds a .torrent file through the WebUI API, unpaused, data under saveDir.
func qbAdd(api, torrent, saveDir string) error {
	data, err := os.ReadFile(torrent)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("torrents", filepath.Base(torrent))
	if err != nil {
		return err
	}
	fw.Write(data)
	w.WriteField("savepath", saveDir)
	w.WriteField("paused", "false")
	w.Close()
	resp, err := qbHTTP.Post(api+"/api/v2/torrents/add", w.FormDataContentType(), &body)
	if err != nil {
		return fmt.Errorf("add torrent: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(msg)) != "Ok." {
		return fmt.Errorf("add torrent: %s: %s", resp.Status, msg)
	}
	return nil
}

// freePort asks the kernel for a free TCP port on loopback.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// parseRate reads a rate in aria2c's notation ("2M", "512K", "1000"): bytes per second,
// K and M being 1024 and 1024*1024.
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult, s = 1<<10, s[:len(s)-1]
	case "M":
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("rate %q: want a number with an optional K or M", s)
	}
	return n * mult, nil
}
