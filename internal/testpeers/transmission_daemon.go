package testpeers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// TransmissionDaemon is a running transmission-daemon (3.00) whose RPC listens on
// 127.0.0.1: unlike transmission-cli it tells who its peers are and how each connection
// travels (Peers).
type TransmissionDaemon struct {
	Proc *testutil.Proc
	Port int    // peer port (TCP, and UDP for uTP)
	RPC  string // its RPC URL

	session string // the X-Transmission-Session-Id it last handed out
}

// StartTransmissionDaemon starts transmission-daemon in the foreground with the settings
// of o (as TransmissionWith: LPD, PEX, port mapping off unless asked; DHT always off, and
// o.DeepLog unused) and µTP as o.UTP says, its data under dir. Add torrents with Add.
func StartTransmissionDaemon(t testing.TB, dir string, o TransmissionOpts) *TransmissionDaemon {
	t.Helper()
	testutil.Need(t, "transmission-daemon")
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = FreePort(t, o.IP)
	}
	cfg := t.TempDir()
	rpcPort := FreePort(t, "127.0.0.1")
	settings := transmissionSettings(o, dir)
	for k, v := range map[string]any{
		"rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": rpcPort,
		"rpc-authentication-required": false, "rpc-whitelist-enabled": false,
		"rpc-host-whitelist-enabled": false, "watch-dir-enabled": false,
	} {
		settings[k] = v
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, o.Wrap...), "transmission-daemon", "--foreground", "--config-dir", cfg, "--log-error")
	d := &TransmissionDaemon{Port: o.Port, RPC: "http://127.0.0.1:" + strconv.Itoa(rpcPort) + "/transmission/rpc"}
	d.Proc = testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 30*time.Second, "transmission-daemon's RPC", func() bool {
		if d.Proc.Exited() {
			t.Fatalf("transmission-daemon exited: %v\n%s", d.Proc.Err(), d.Proc.Output())
		}
		return d.call("session-get", nil, nil) == nil
	})
	return d
}

// call makes one RPC request, answering the session-id challenge (409) once.
func (d *TransmissionDaemon) call(method string, args any, result any) error {
	body, err := json.Marshal(map[string]any{"method": method, "arguments": args})
	if err != nil {
		return err
	}
	for range 2 {
		req, err := http.NewRequest("POST", d.RPC, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-Transmission-Session-Id", d.session)
		resp, err := transmissionHTTP.Do(req)
		if err != nil {
			return fmt.Errorf("transmission rpc %s: %w", method, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusConflict {
			d.session = resp.Header.Get("X-Transmission-Session-Id")
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("transmission rpc %s: %s: %s", method, resp.Status, msg)
		}
		var r struct {
			Result    string          `json:"result"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(msg, &r); err != nil {
			return fmt.Errorf("transmission rpc %s: %w: %s", method, err, msg)
		}
		if r.Result != "success" {
			return fmt.Errorf("transmission rpc %s: %s", method, r.Result)
		}
		if result != nil {
			return json.Unmarshal(r.Arguments, result)
		}
		return nil
	}
	return fmt.Errorf("transmission rpc %s: no session id", method)
}

// transmissionHTTP talks to the RPC on loopback and keeps no idle connections.
var transmissionHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Add adds the .torrent file at torrent (or a magnet link), its data under dir, started.
func (d *TransmissionDaemon) Add(t testing.TB, torrent, dir string) {
	t.Helper()
	if err := d.TryAdd(torrent, dir); err != nil {
		t.Fatal(err)
	}
}

// TryAdd is Add returning the daemon's refusal (e.g. "invalid or corrupt torrent file").
func (d *TransmissionDaemon) TryAdd(torrent, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	return d.call("torrent-add", map[string]any{"filename": torrent, "download-dir": abs, "paused": false}, nil)
}

// TransmissionPeer is a connection of a torrent as Transmission's RPC shows it.
type TransmissionPeer struct {
	Address     string `json:"address"`
	Port        int    `json:"port"`
	ClientName  string `json:"clientName"`
	FlagStr     string `json:"flagStr"`
	IsUTP       bool   `json:"isUTP"`
	IsEncrypted bool   `json:"isEncrypted"`
	IsIncoming  bool   `json:"isIncoming"`
}

// TransmissionTorrent is a torrent's state as the RPC shows it.
type TransmissionTorrent struct {
	HashString  string             `json:"hashString"`
	PercentDone float64            `json:"percentDone"`
	Status      int                `json:"status"` // 6: seeding
	Error       int                `json:"error"`
	ErrorString string             `json:"errorString"`
	Peers       []TransmissionPeer `json:"peers"`
}

// Torrents lists the daemon's torrents with their peers.
func (d *TransmissionDaemon) Torrents() ([]TransmissionTorrent, error) {
	var r struct {
		Torrents []TransmissionTorrent `json:"torrents"`
	}
	err := d.call("torrent-get", map[string]any{"fields": []string{"hashString", "percentDone", "status", "error", "errorString", "peers"}}, &r)
	return r.Torrents, err
}

// WaitSeeding waits until every torrent is checked and seeding (status 6).
func (d *TransmissionDaemon) WaitSeeding(t testing.TB, dur time.Duration) {
	t.Helper()
	testutil.WaitFor(t, dur, "Transmission to seed its torrents", func() bool {
		if d.Proc.Exited() {
			t.Fatalf("transmission-daemon exited: %v\n%s", d.Proc.Err(), d.Proc.Output())
		}
		ts, err := d.Torrents()
		if err != nil || len(ts) == 0 {
			return false
		}
		for _, tr := range ts {
			if tr.Error != 0 {
				t.Fatalf("Transmission: %s", tr.ErrorString)
			}
			if tr.Status != 6 || tr.PercentDone < 1 {
				return false
			}
		}
		return true
	})
}
