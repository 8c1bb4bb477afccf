package tracker

// HTTP side of the embedded tracker: /announce (BEP 3, BEP 23 compact peers, BEP 7 peers6),
// /scrape, and a plain-text /stats page. Handlers run on net/http's goroutines and touch
// swarm state only through the Server's mu-guarded methods.

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", s.serveHTTPAnnounce)
	mux.HandleFunc("/scrape", s.serveHTTPScrape)
	mux.HandleFunc("/stats", s.serveHTTPStats)
	mux.HandleFunc("/{$}", s.serveHTTPStats)
	return mux
}

func (s *Server) serveHTTPAnnounce(w http.ResponseWriter, r *http.Request) {
	req, err := srvParseAnnounceQuery(r.URL.RawQuery)
	if err != nil {
		srvWriteFailure(w, err)
		return
	}
	src, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		srvWriteFailure(w, fmt.Errorf("unknown remote address %q", r.RemoteAddr))
		return
	}
	addr := netip.AddrPortFrom(srvPeerAddr(src.Addr(), req.IP), req.Port)
	resp, err := s.announce(req, addr, srvFamilyAny)
	if err != nil {
		srvWriteFailure(w, err)
		return
	}
	s.log.WithFields(map[string]any{
		"info_hash": hex.EncodeToString(req.InfoHash[:]), "peer": addr.String(),
		"event": req.Event.String(), "left": req.Left, "returned": len(resp.Peers),
	}).Debug("tracker http announce")
	srvWriteBencode(w, srvAnnounceReply(resp, req.Compact, req.NoPeerID))
}

func (s *Server) serveHTTPScrape(w http.ResponseWriter, r *http.Request) {
	hashes, err := srvParseScrapeQuery(r.URL.RawQuery)
	if err != nil {
		srvWriteFailure(w, err)
		return
	}
	files := make(map[string]any)
	for ih, st := range s.scrape(hashes) {
		files[string(ih[:])] = map[string]any{
			"complete":   st.Complete,
			"downloaded": st.Downloaded,
			"incomplete": st.Incomplete,
		}
	}
	srvWriteBencode(w, map[string]any{"files": files})
}

func (s *Server) serveHTTPStats(w http.ResponseWriter, r *http.Request) {
	stats := s.scrape(nil)
	hashes := make([][20]byte, 0, len(stats))
	var seeders, leechers int
	for ih, st := range stats {
		hashes = append(hashes, ih)
		seeders += st.Complete
		leechers += st.Incomplete
	}
	sort.Slice(hashes, func(i, j int) bool { return string(hashes[i][:]) < string(hashes[j][:]) })
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	fmt.Fprintf(&b, "torrentfs tracker: %d torrents, %d seeders, %d leechers\n\n", len(stats), seeders, leechers)
	fmt.Fprintf(&b, "%-40s %8s %8s %10s\n", "info_hash", "seeders", "leechers", "downloaded")
	for _, ih := range hashes {
		st := stats[ih]
		fmt.Fprintf(&b, "%x %8d %8d %10d\n", ih, st.Complete, st.Incomplete, st.Downloaded)
	}
	w.Write([]byte(b.String()))
}

// srvAnnounceReply is the bencoded dict for an announce reply. Compact replies put IPv4
// peers in `peers` (6 bytes each) and IPv6 peers in `peers6` (18 bytes each).
func srvAnnounceReply(resp AnnounceResponse, compact, noPeerID bool) map[string]any {
	reply := map[string]any{
		"interval":     srvSeconds(resp.Interval),
		"min interval": srvSeconds(resp.MinInterval),
		"complete":     resp.Complete,
		"incomplete":   resp.Incomplete,
	}
	if compact {
		var v4, v6 []byte
		for _, p := range resp.Peers {
			a := p.Addr.Addr()
			if a.Is4() {
				v4 = append(v4, a.AsSlice()...)
				v4 = binary.BigEndian.AppendUint16(v4, p.Addr.Port())
			} else {
				v6 = append(v6, a.AsSlice()...)
				v6 = binary.BigEndian.AppendUint16(v6, p.Addr.Port())
			}
		}
		reply["peers"] = string(v4)
		if len(v6) > 0 {
			reply["peers6"] = string(v6)
		}
		return reply
	}
	peers := make([]any, 0, len(resp.Peers))
	for _, p := range resp.Peers {
		d := map[string]any{"ip": p.Addr.Addr().String(), "port": int(p.Addr.Port())}
		if !noPeerID {
			d["peer id"] = string(p.ID)
		}
		peers = append(peers, d)
	}
	reply["peers"] = peers
	return reply
}

// srvSeconds rounds d to whole seconds for the wire, at least 1 so that a client never
// takes a sub-second test interval as "announce continuously".
func srvSeconds(d time.Duration) int {
	return max(1, int(d/time.Second))
}

func srvWriteFailure(w http.ResponseWriter, err error) {
	// BEP 3: failures are a 200 reply whose dict holds only `failure reason`.
	srvWriteBencode(w, map[string]any{"failure reason": err.Error()})
}

func srvWriteBencode(w http.ResponseWriter, v any) {
	b, err := bencode.Marshal(v)
	if err != nil {
		// Only our own maps of strings and ints get here; a failure is a bug.
		http.Error(w, "tracker: encoding reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b)
}

// srvSplitQuery decodes a query string into its values. Unlike url.ParseQuery, which skips
// a malformed pair and goes on, a malformed pair fails the whole request: the tracker must
// not act on half an announce.
func srvSplitQuery(raw string) (map[string][]string, error) {
	vals := make(map[string][]string)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("malformed query parameter %q", k)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("malformed value of %s", key)
		}
		vals[key] = append(vals[key], val)
	}
	return vals, nil
}

// srvParseAnnounceQuery parses an HTTP announce's query string (BEP 3). Missing uploaded
// and downloaded count as 0; a missing left as unknown (-1), which counts as a leecher;
// numwant missing or negative is -1 (the tracker's default). Compact replies are the
// default unless compact=0 (BEP 23 lets trackers prefer them). An `ip` that is not an IP
// literal is ignored rather than resolved.
func srvParseAnnounceQuery(raw string) (AnnounceRequest, error) {
	var req AnnounceRequest
	vals, err := srvSplitQuery(raw)
	if err != nil {
		return req, err
	}
	get := func(k string) (string, bool) {
		v, ok := vals[k]
		if !ok {
			return "", false
		}
		return v[0], true
	}
	ih, ok := get("info_hash")
	if !ok {
		return req, errors.New("missing info_hash")
	}
	if len(ih) != 20 {
		return req, fmt.Errorf("invalid info_hash: %d bytes, want 20", len(ih))
	}
	copy(req.InfoHash[:], ih)
	pid, ok := get("peer_id")
	if !ok {
		return req, errors.New("missing peer_id")
	}
	if len(pid) != 20 {
		return req, fmt.Errorf("invalid peer_id: %d bytes, want 20", len(pid))
	}
	copy(req.PeerID[:], pid)

	ps, ok := get("port")
	if !ok {
		return req, errors.New("missing port")
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return req, fmt.Errorf("invalid port %q", ps)
	}
	req.Port = uint16(port)

	counter := func(k string, def int64) (int64, error) {
		v, ok := get(k)
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid %s %q", k, v)
		}
		return n, nil
	}
	if req.Uploaded, err = counter("uploaded", 0); err != nil {
		return req, err
	}
	if req.Downloaded, err = counter("downloaded", 0); err != nil {
		return req, err
	}
	if req.Left, err = counter("left", -1); err != nil {
		return req, err
	}

	ev, _ := get("event")
	switch ev {
	case "", "empty", "paused":
		req.Event = EventNone
	case "started":
		req.Event = EventStarted
	case "completed":
		req.Event = EventCompleted
	case "stopped":
		req.Event = EventStopped
	default:
		return req, fmt.Errorf("invalid event %q", ev)
	}

	req.NumWant = -1
	if v, ok := get("numwant"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, fmt.Errorf("invalid numwant %q", v)
		}
		if n >= 0 {
			req.NumWant = n
		}
	}
	c, _ := get("compact")
	req.Compact = c != "0"
	npi, _ := get("no_peer_id")
	req.NoPeerID = npi == "1"
	if k, ok := get("key"); ok {
		req.Key = srvParseKey(k)
	}
	req.TrackerID, _ = get("trackerid")
	if ipv, ok := get("ip"); ok {
		if a, err := netip.ParseAddr(ipv); err == nil {
			req.IP = a.Unmap()
		}
	}
	return req, nil
}

// srvParseKey turns the free-form `key` into a number. Clients send hex (libtorrent,
// aria2c) or decimal; any string maps to the same number every time, which is all the
// key is used for.
func srvParseKey(k string) uint32 {
	if len(k) <= 8 {
		if n, err := strconv.ParseUint(k, 16, 32); err == nil {
			return uint32(n)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(k))
	return h.Sum32()
}

// srvParseScrapeQuery returns the info_hash values of a scrape (none means all torrents).
func srvParseScrapeQuery(raw string) ([][20]byte, error) {
	vals, err := srvSplitQuery(raw)
	if err != nil {
		return nil, err
	}
	var hashes [][20]byte
	for _, v := range vals["info_hash"] {
		if len(v) != 20 {
			return nil, fmt.Errorf("invalid info_hash: %d bytes, want 20", len(v))
		}
		hashes = append(hashes, [20]byte([]byte(v)))
	}
	return hashes, nil
}
