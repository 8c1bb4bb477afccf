package qbit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// AddPeers asks qBittorrent to connect the torrent with info-hash hash (lowercase hex) to
// each of peers (IP:PORT): they join its peer list as if given by hand, with no other
// source. It fails unless qBittorrent took every one: it takes none while it has not loaded
// the torrent yet (the WebUI answers for an unknown hash as for a known one).
func AddPeers(api, hash string, peers ...string) error {
	form := url.Values{"hashes": {hash}, "peers": {strings.Join(peers, "|")}}
	resp, err := HTTP.PostForm(api+"/api/v2/torrents/addPeers", form)
	if err != nil {
		return fmt.Errorf("add peers to qBittorrent: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("add peers to qBittorrent: %s: %s", resp.Status, msg)
	}
	// qBittorrent 4.5 answers with how many peers each torrent took.
	var res map[string]struct {
		Added int `json:"added"`
	}
	if err := json.Unmarshal(msg, &res); err != nil {
		return fmt.Errorf("add peers to qBittorrent: %w: %s", err, msg)
	}
	if r, ok := res[hash]; !ok || r.Added < len(peers) {
		return fmt.Errorf("add peers to qBittorrent: took %d of %d: %s", r.Added, len(peers), msg)
	}
	return nil
}

// Peer is a connection of a torrent as the WebUI shows it.
type Peer struct {
	IP     string `json:"ip"`
	Port   int    `json:"port"`
	Client string `json:"client"`
	// Flags are qBittorrent's one-letter peer flags separated by spaces: among them X for
	// a peer learned through peer exchange, H through the DHT, L through LSD, I for a
	// connection the peer opened, E for an RC4-encrypted one (e: only the handshake
	// was), P for one over uTP.
	Flags string `json:"flags"`
}

// HasFlag tells whether f is among the peer's flags.
func (p Peer) HasFlag(f string) bool {
	for _, g := range strings.Fields(p.Flags) {
		if g == f {
			return true
		}
	}
	return false
}

// Peers returns the connections of the torrent with info-hash hash, keyed by IP:PORT.
func Peers(api, hash string) (map[string]Peer, error) {
	resp, err := HTTP.Get(api + "/api/v2/sync/torrentPeers?hash=" + url.QueryEscape(hash))
	if err != nil {
		return nil, fmt.Errorf("qBittorrent peers: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("qBittorrent peers: %s: %s", resp.Status, msg)
	}
	// Without a rid every answer is a full update.
	var r struct {
		Peers map[string]Peer `json:"peers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("qBittorrent peers: %w", err)
	}
	return r.Peers, nil
}
