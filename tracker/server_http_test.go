package tracker

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// srvTestHTTPClient makes requests from a chosen loopback address, as a peer on
// 127.0.0.11 would.
func srvTestHTTPClient(t *testing.T, local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// srvTestGet fetches base+path?query and decodes the bencoded dict.
func srvTestGet(t *testing.T, c *http.Client, base, path, query string) map[string]any {
	t.Helper()
	resp, err := c.Get(base + path + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	var d map[string]any
	if err := bencode.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET %s: reply %q: %v", path, body, err)
	}
	return d
}

// srvTestQuery builds an announce query; extra pairs override or add parameters.
func srvTestQuery(ih, peerID [20]byte, port int, extra ...string) string {
	v := url.Values{}
	v.Set("info_hash", string(ih[:]))
	v.Set("peer_id", string(peerID[:]))
	v.Set("port", fmt.Sprint(port))
	v.Set("uploaded", "0")
	v.Set("downloaded", "0")
	v.Set("left", "1000")
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "<unset>" {
			v.Del(extra[i])
			continue
		}
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

func srvTestCompactPeers(t *testing.T, s string, addrLen int) []netip.AddrPort {
	t.Helper()
	if len(s)%(addrLen+2) != 0 {
		t.Fatalf("compact peers of %d bytes, not a multiple of %d", len(s), addrLen+2)
	}
	var out []netip.AddrPort
	for b := []byte(s); len(b) > 0; b = b[addrLen+2:] {
		a, _ := netip.AddrFromSlice(b[:addrLen])
		out = append(out, netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[addrLen:])))
	}
	return out
}

func TestServerHTTPAnnounceFailures(t *testing.T) {
	allowed := srvTestHash(1)
	srv := startSrvTestServer(t, ServerConfig{Allow: func(ih [20]byte) bool { return ih == allowed }})
	c := srvTestHTTPClient(t, "127.0.0.1")
	id := srvTestPeerID(1)
	tests := []struct {
		name, query, want string
	}{
		{"no info_hash", srvTestQuery(allowed, id, 1, "info_hash", "<unset>"), "missing info_hash"},
		{"short info_hash", srvTestQuery(allowed, id, 1, "info_hash", strings.Repeat("a", 19)), "invalid info_hash"},
		{"long info_hash", srvTestQuery(allowed, id, 1, "info_hash", strings.Repeat("a", 21)), "invalid info_hash"},
		{"no peer_id", srvTestQuery(allowed, id, 1, "peer_id", "<unset>"), "missing peer_id"},
		{"short peer_id", srvTestQuery(allowed, id, 1, "peer_id", "abc"), "invalid peer_id"},
		{"no port", srvTestQuery(allowed, id, 1, "port", "<unset>"), "missing port"},
		{"port 0", srvTestQuery(allowed, id, 0), "invalid port"},
		{"port too big", srvTestQuery(allowed, id, 65536), "invalid port"},
		{"port not a number", srvTestQuery(allowed, id, 1, "port", "x"), "invalid port"},
		{"negative left", srvTestQuery(allowed, id, 1, "left", "-1"), "invalid left"},
		{"bad uploaded", srvTestQuery(allowed, id, 1, "uploaded", "1e3"), "invalid uploaded"},
		{"bad event", srvTestQuery(allowed, id, 1, "event", "exploded"), "invalid event"},
		{"bad numwant", srvTestQuery(allowed, id, 1, "numwant", "many"), "invalid numwant"},
		{"bad escape", srvTestQuery(allowed, id, 1) + "&x=%zz", "malformed"},
		{"not allowed", srvTestQuery(srvTestHash(2), id, 1), "not registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := srvTestGet(t, c, srv.httpBase, "/announce", tt.query)
			reason, _ := d["failure reason"].(string)
			if !strings.Contains(reason, tt.want) {
				t.Fatalf("failure reason %q, want it to contain %q (reply %v)", reason, tt.want, d)
			}
			if len(d) != 1 {
				t.Errorf("failure reply has more than the reason: %v", d)
			}
		})
	}
	// None of the failures made a peer.
	if st := srv.Stats(allowed); st != (ScrapeStats{}) {
		t.Fatalf("failed announces left stats %+v", st)
	}
}

func TestServerHTTPAnnounce(t *testing.T) {
	srv := startSrvTestServer(t, ServerConfig{Interval: 90 * time.Second})
	ih := srvTestHash(9)
	// A seeder on 127.0.0.11 (address from the connection), a leecher that names itself
	// 127.0.0.12 with `ip`, and an IPv6 leecher.
	seed := srvTestGet(t, srvTestHTTPClient(t, "127.0.0.11"), srv.httpBase, "/announce",
		srvTestQuery(ih, srvTestPeerID(1), 6881, "left", "0", "event", "started"))
	if p := seed["peers"]; p != "" {
		t.Fatalf("first peer got peers %q", p)
	}
	srvTestGet(t, srvTestHTTPClient(t, "127.0.0.1"), srv.httpBase, "/announce",
		srvTestQuery(ih, srvTestPeerID(2), 6882, "ip", "127.0.0.12", "event", "started"))
	srvTestGet(t, srvTestHTTPClient(t, "127.0.0.1"), srv.httpBase, "/announce",
		srvTestQuery(ih, srvTestPeerID(3), 6883, "ip", "::1", "key", "deadbeef"))

	c := srvTestHTTPClient(t, "127.0.0.13")
	t.Run("compact", func(t *testing.T) {
		d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(4), 6884, "compact", "1"))
		if d["interval"] != int64(90) || d["min interval"] != int64(45) {
			t.Errorf("interval %v, min interval %v; want 90, 45", d["interval"], d["min interval"])
		}
		if d["complete"] != int64(1) || d["incomplete"] != int64(3) {
			t.Errorf("complete %v, incomplete %v; want 1, 3", d["complete"], d["incomplete"])
		}
		got4 := srvTestCompactPeers(t, d["peers"].(string), 4)
		got6 := srvTestCompactPeers(t, d["peers6"].(string), 16)
		want4 := map[netip.AddrPort]bool{
			netip.MustParseAddrPort("127.0.0.11:6881"): true,
			netip.MustParseAddrPort("127.0.0.12:6882"): true,
		}
		if len(got4) != 2 || !want4[got4[0]] || !want4[got4[1]] || got4[0] == got4[1] {
			t.Errorf("peers %v, want %v", got4, want4)
		}
		if len(got6) != 1 || got6[0] != netip.MustParseAddrPort("[::1]:6883") {
			t.Errorf("peers6 %v, want [::1]:6883", got6)
		}
	})
	t.Run("non-compact", func(t *testing.T) {
		d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(4), 6884, "compact", "0"))
		list, ok := d["peers"].([]any)
		if !ok || len(list) != 3 {
			t.Fatalf("peers %#v, want a list of 3", d["peers"])
		}
		got := map[string]string{}
		for _, e := range list {
			m := e.(map[string]any)
			got[fmt.Sprintf("%v:%v", m["ip"], m["port"])] = m["peer id"].(string)
		}
		want := map[string]string{
			"127.0.0.11:6881": srvTestPID(1),
			"127.0.0.12:6882": srvTestPID(2),
			"::1:6883":        srvTestPID(3),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("peers %q, want %q", got, want)
		}
	})
	t.Run("no_peer_id", func(t *testing.T) {
		d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(4), 6884, "compact", "0", "no_peer_id", "1"))
		for _, e := range d["peers"].([]any) {
			if _, ok := e.(map[string]any)["peer id"]; ok {
				t.Fatalf("peer id sent despite no_peer_id: %v", e)
			}
		}
	})
	t.Run("numwant", func(t *testing.T) {
		d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(4), 6884, "numwant", "1", "compact", "0"))
		if n := len(d["peers"].([]any)); n != 1 {
			t.Fatalf("numwant=1 gave %d peers", n)
		}
	})
	t.Run("scrape", func(t *testing.T) {
		other := srvTestHash(10)
		d := srvTestGet(t, c, srv.httpBase, "/scrape", "info_hash="+url.QueryEscape(string(ih[:]))+"&info_hash="+url.QueryEscape(string(other[:])))
		files := d["files"].(map[string]any)
		if len(files) != 2 {
			t.Fatalf("files %v, want 2 entries", files)
		}
		got := files[string(ih[:])].(map[string]any)
		if got["complete"] != int64(1) || got["incomplete"] != int64(3) || got["downloaded"] != int64(0) {
			t.Errorf("scrape of the swarm: %v", got)
		}
		if z := files[string(other[:])].(map[string]any); z["complete"] != int64(0) || z["incomplete"] != int64(0) {
			t.Errorf("scrape of an unknown torrent: %v", z)
		}
		all := srvTestGet(t, c, srv.httpBase, "/scrape", "")["files"].(map[string]any)
		if _, ok := all[string(ih[:])]; !ok || len(all) != 1 {
			t.Errorf("scrape of everything: %v", all)
		}
		bad := srvTestGet(t, c, srv.httpBase, "/scrape", "info_hash=short")
		if _, ok := bad["failure reason"]; !ok {
			t.Errorf("scrape of a 5-byte info_hash: %v", bad)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		srvTestGet(t, srvTestHTTPClient(t, "127.0.0.1"), srv.httpBase, "/announce",
			srvTestQuery(ih, srvTestPeerID(3), 6883, "ip", "::1", "key", "deadbeef", "event", "stopped"))
		d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(4), 6884))
		if _, ok := d["peers6"]; ok {
			t.Errorf("stopped IPv6 peer still returned: %v", d)
		}
		if d["incomplete"] != int64(2) {
			t.Errorf("incomplete %v after a stop, want 2", d["incomplete"])
		}
	})
	t.Run("stats page", func(t *testing.T) {
		resp, err := c.Get(srv.httpBase + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), fmt.Sprintf("%x", ih)) || !strings.Contains(string(body), "1 torrents") {
			t.Errorf("stats page lacks the torrent:\n%s", body)
		}
	})
}

// TestServerHTTPExpiry drives the clock past the peer TTL: a peer that stopped
// re-announcing is no longer handed out.
func TestServerHTTPExpiry(t *testing.T) {
	clock := newSrvTestClock()
	srv := startSrvTestServer(t, ServerConfig{Interval: time.Minute, Now: clock.Now})
	c := srvTestHTTPClient(t, "127.0.0.1")
	ih := srvTestHash(11)
	srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(1), 1001, "ip", "127.0.0.21"))
	clock.Advance(2 * time.Minute)
	d := srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(2), 1002, "ip", "127.0.0.22"))
	if n := len(d["peers"].(string)) / 6; n != 1 {
		t.Fatalf("before the TTL: %d peers, want 1", n)
	}
	clock.Advance(90 * time.Second) // peer 1 last seen 3.5 min ago; TTL is 2*1min+1min
	d = srvTestGet(t, c, srv.httpBase, "/announce", srvTestQuery(ih, srvTestPeerID(2), 1002, "ip", "127.0.0.22"))
	if p := d["peers"].(string); p != "" {
		t.Fatalf("expired peer still returned: %v", srvTestCompactPeers(t, p, 4))
	}
	if d["incomplete"] != int64(1) {
		t.Fatalf("incomplete %v, want 1", d["incomplete"])
	}
}

func TestServerParseAnnounceQuery(t *testing.T) {
	ih, id := srvTestHash(1), srvTestPeerID(1)
	req, err := srvParseAnnounceQuery(srvTestQuery(ih, id, 51413, "left", "<unset>", "numwant", "-5", "key", "zz-not-hex", "ip", "example.org"))
	if err != nil {
		t.Fatal(err)
	}
	want := AnnounceRequest{InfoHash: ih, PeerID: id, Port: 51413, Left: -1, NumWant: -1, Compact: true, Key: srvParseKey("zz-not-hex")}
	if fmt.Sprint(req) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", req, want)
	}
	// Raw percent-encoded bytes, as clients really send them.
	raw := "info_hash=%00%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13&peer_id=-AR1000-abcdefghijkl&port=6881&left=0&event=completed&compact=0&no_peer_id=1&key=00ff&ip=127.0.0.5"
	req, err = srvParseAnnounceQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range req.InfoHash {
		if b != byte(i) {
			t.Fatalf("info_hash %x", req.InfoHash)
		}
	}
	if req.Event != EventCompleted || req.Compact || !req.NoPeerID || req.Key != 0xff || req.IP != netip.MustParseAddr("127.0.0.5") || req.Left != 0 {
		t.Fatalf("parsed %+v", req)
	}
}

func FuzzServerParseAnnounceQuery(f *testing.F) {
	f.Add(srvTestQuery(srvTestHash(1), srvTestPeerID(1), 6881, "event", "started", "ip", "::1"))
	f.Add("info_hash=%00%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13&peer_id=-AR1000-abcdefghijkl&port=6881&left=0&numwant=9")
	f.Add("info_hash=%zz&&=&port=99999")
	f.Add("")
	f.Fuzz(func(t *testing.T, q string) {
		req, err := srvParseAnnounceQuery(q)
		if err != nil {
			return
		}
		if req.Port == 0 || req.Left < -1 || req.Uploaded < 0 || req.Downloaded < 0 || req.NumWant < -1 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		// Re-encoding what was understood must parse to the same request.
		v := url.Values{}
		v.Set("info_hash", string(req.InfoHash[:]))
		v.Set("peer_id", string(req.PeerID[:]))
		v.Set("port", fmt.Sprint(req.Port))
		v.Set("uploaded", fmt.Sprint(req.Uploaded))
		v.Set("downloaded", fmt.Sprint(req.Downloaded))
		if req.Left >= 0 {
			v.Set("left", fmt.Sprint(req.Left))
		}
		v.Set("event", req.Event.String())
		v.Set("numwant", fmt.Sprint(req.NumWant))
		if !req.Compact {
			v.Set("compact", "0")
		}
		if req.NoPeerID {
			v.Set("no_peer_id", "1")
		}
		v.Set("key", fmt.Sprintf("%x", req.Key))
		if req.TrackerID != "" {
			v.Set("trackerid", req.TrackerID)
		}
		if req.IP.IsValid() {
			v.Set("ip", req.IP.String())
		}
		again, err := srvParseAnnounceQuery(v.Encode())
		if err != nil {
			t.Fatalf("re-encoded %q: %v", v.Encode(), err)
		}
		if fmt.Sprint(again) != fmt.Sprint(req) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, req)
		}
	})
}

func FuzzServerParseScrapeQuery(f *testing.F) {
	ih := srvTestHash(3)
	f.Add("info_hash=" + url.QueryEscape(string(ih[:])))
	f.Add("info_hash=a&info_hash=%")
	f.Fuzz(func(t *testing.T, q string) {
		hashes, err := srvParseScrapeQuery(q)
		if err == nil && strings.Count(q, "&")+1 < len(hashes) {
			t.Fatalf("%d hashes from %q", len(hashes), q)
		}
	})
}

func srvTestPID(n int) string {
	id := srvTestPeerID(n)
	return string(id[:])
}
