// Package qbit drives qbittorrent-nox (qBittorrent on libtorrent 2.0, what most of a real
// swarm runs) as a peer for tests and benchmarks: a profile that keeps it on loopback and
// off every discovery and lookup service, and the few WebUI API calls they need. It holds
// no state; callers start and stop the process themselves.
package qbit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HTTP talks to the WebUI on loopback and keeps no idle connections, so no transport
// goroutine outlives its caller.
var HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// WriteProfile writes a fresh qBittorrent profile under dir: BitTorrent on ip:port over TCP
// only; DHT, LSD, PEX, encryption, port mapping and peer-country lookups off; queueing off
// (every added torrent runs); the WebUI on 127.0.0.1:webPort without login for loopback
// clients; and a global upload limit of upload bytes/s (0: none) that covers loopback peers
// too (qBittorrent maps every address to libtorrent's global peer class unless told to
// ignore limits on the LAN). Start it with `qbittorrent-nox --profile=DIR`.
func WriteProfile(dir, ip string, port, webPort int, upload int64) error {
	return Profile{IP: ip, Port: port, WebPort: webPort, Upload: upload}.Write(dir)
}

// Profile is a qBittorrent profile; the zero values of the optional fields give
// WriteProfile's loopback-only one.
type Profile struct {
	IP      string // BitTorrent listen address
	Port    int    // BitTorrent listen port
	WebPort int
	Upload  int64 // global upload limit in bytes/s; 0: none

	Interface  string // BitTorrent network interface; "" is lo
	WebAddress string // WebUI listen address; "" is 127.0.0.1, else clients in 10/8 need no login
	LSD        bool   // Local Service Discovery (BEP 14) on
	PEX        bool   // peer exchange (BEP 11, ut_pex) on
	// Encryption is its MSE/PE policy: 0 prefer (the zero value keeps it as before: it
	// offers both and takes either), 1 require (forced), 2 off.
	Encryption int
	// Protocol is the transport of its peer connections, both ways: "TCP" (the zero value
	// "" too), "UTP" (BEP 29 only: no TCP listener, no TCP dials) or "Both".
	Protocol string
}

// Write writes the profile under dir.
func (p Profile) Write(dir string) error {
	proto := p.Protocol
	if proto == "" {
		proto = "TCP"
	}
	iface := p.Interface
	if iface == "" {
		iface = "lo"
	}
	web := p.WebAddress
	whitelist := "false"
	if web == "" {
		web = "127.0.0.1"
	} else {
		// A test host's WebUI is reached from the test's namespace, which is not loopback.
		whitelist = "true"
	}
	// qBittorrent 4.5 reads these keys; it writes back what it understood on exit.
	conf := fmt.Sprintf(`[LegalNotice]
Accepted=true

[BitTorrent]
Session\DHTEnabled=false
Session\LSDEnabled=%t
Session\PeXEnabled=%t
Session\Port=%d
Session\Interface=%s
Session\InterfaceName=%s
Session\InterfaceAddress=%s
Session\BTProtocol=%s
Session\QueueingSystemEnabled=false
Session\AddTorrentPaused=false
Session\TempPathEnabled=false
Session\Encryption=%d
Session\GlobalUPSpeedLimit=%d
Session\IgnoreLimitsOnLAN=false

[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\Address=%s
WebUI\Port=%d
WebUI\LocalHostAuth=false
WebUI\AuthSubnetWhitelistEnabled=%s
WebUI\AuthSubnetWhitelist=10.0.0.0/8
WebUI\HostHeaderValidation=false
WebUI\CSRFProtection=false
WebUI\UseUPnP=false
Connection\UPnP=false
Connection\ResolvePeerCountries=false
`, p.LSD, p.PEX, p.Port, iface, iface, p.IP, proto, p.Encryption, p.Upload/1024, web, p.WebPort, whitelist)
	confDir := filepath.Join(dir, "qBittorrent", "config")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(confDir, "qBittorrent.conf"), []byte(conf), 0o644)
}

// Up tells whether the WebUI at api (http://127.0.0.1:PORT) answers.
func Up(api string) bool {
	resp, err := HTTP.Get(api + "/api/v2/app/version")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Add adds the .torrent file at torrent, unpaused, its data under saveDir (made absolute:
// qBittorrent takes a relative path as relative to its own downloads folder).
func Add(api, torrent, saveDir string) error {
	data, err := os.ReadFile(torrent)
	if err != nil {
		return err
	}
	if saveDir, err = filepath.Abs(saveDir); err != nil {
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
	resp, err := HTTP.Post(api+"/api/v2/torrents/add", w.FormDataContentType(), &body)
	if err != nil {
		return fmt.Errorf("add torrent to qBittorrent: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(msg)) != "Ok." {
		return fmt.Errorf("add torrent to qBittorrent: %s: %s", resp.Status, msg)
	}
	return nil
}

// Seeding tells whether every torrent has its data checked and is being seeded: before
// that qBittorrent resets connections for a torrent at the handshake.
func Seeding(api string) bool {
	resp, err := HTTP.Get(api + "/api/v2/torrents/info")
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
}

// Torrent is a torrent as the WebUI's torrents/info shows it.
type Torrent struct {
	// Hash is its id, which AddPeers and Peers take: the v1 info-hash of a v1 torrent, the
	// v2 one truncated to 20 bytes of a hybrid or v2-only one (hex).
	Hash string `json:"hash"`
	// InfoHashV1 and InfoHashV2 are its info-hashes in hex; qBittorrent 4.4 and later
	// show a v2 one for a torrent whose metadata has v2 (hybrid or v2-only), else "".
	InfoHashV1 string  `json:"infohash_v1"`
	InfoHashV2 string  `json:"infohash_v2"`
	Progress   float64 `json:"progress"` // 1 once every wanted piece is checked
	State      string  `json:"state"`
}

// Torrents lists qBittorrent's torrents.
func Torrents(api string) ([]Torrent, error) {
	resp, err := HTTP.Get(api + "/api/v2/torrents/info")
	if err != nil {
		return nil, fmt.Errorf("qBittorrent torrents: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("qBittorrent torrents: %s: %s", resp.Status, msg)
	}
	var ts []Torrent
	if err := json.NewDecoder(resp.Body).Decode(&ts); err != nil {
		return nil, fmt.Errorf("qBittorrent torrents: %w", err)
	}
	return ts, nil
}
