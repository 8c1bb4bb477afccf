package tracker

// HTTP tracker client (BEP 3, BEP 23 compact peers, BEP 7 peers6, BEP 48 scrape).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// HTTPMaxReply bounds the size of a tracker reply read into memory.
const HTTPMaxReply = 4 << 20

// HTTPClient announces to and scrapes one HTTP(S) tracker. It holds no mutable state after
// construction, so it may be used from any goroutine.
type HTTPClient struct {
	url      *url.URL
	http     *http.Client
	maxReply int64
}

// NewHTTPClient returns a client for the announce URL u, with conservative timeouts. A
// caller's context may cut a request shorter still.
func NewHTTPClient(u *url.URL) *HTTPClient {
	dialer := &net.Dialer{Timeout: 15 * time.Second}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   1,
	}
	return &HTTPClient{
		url:      u,
		http:     &http.Client{Transport: transport, Timeout: 60 * time.Second},
		maxReply: HTTPMaxReply,
	}
}

// bind makes the client connect from the local address local.
func (c *HTTPClient) bind(local netip.Addr) {
	dialer := &net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: local.AsSlice()}}
	c.http.Transport.(*http.Transport).DialContext = dialer.DialContext
}

// Close drops idle keep-alive connections.
func (c *HTTPClient) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Announce sends req and parses the tracker's reply. Peers are always asked for compactly.
func (c *HTTPClient) Announce(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error) {
	u := httpAnnounceURL(c.url, req)
	body, err := c.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", httpDisplayURL(c.url), err)
	}
	resp, err := httpParseAnnounceReply(body)
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", httpDisplayURL(c.url), err)
	}
	return resp, nil
}

// Scrape asks for the counts of hashes at the scrape URL derived from the announce URL.
func (c *HTTPClient) Scrape(ctx context.Context, hashes [][20]byte) (map[[20]byte]ScrapeStats, error) {
	su, err := httpScrapeURL(c.url)
	if err != nil {
		return nil, err
	}
	var q strings.Builder
	q.WriteString(su.RawQuery)
	for _, h := range hashes {
		httpAddParam(&q, "info_hash", httpEscapeBytes(h[:]))
	}
	su.RawQuery = q.String()
	body, err := c.get(ctx, su)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", httpDisplayURL(su), err)
	}
	stats, err := httpParseScrapeReply(body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", httpDisplayURL(su), err)
	}
	return stats, nil
}

// get fetches u and returns the body, at most maxReply bytes. A non-200 status is an error,
// carrying the tracker's failure reason if the body has one.
func (c *HTTPClient) get(ctx context.Context, u *url.URL) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	hreq.Header.Set("User-Agent", "torrentfs")
	hresp, err := c.http.Do(hreq)
	if err != nil {
		// url.Error repeats the whole query: long, and a private tracker's passkey is in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, err
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, c.maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if int64(len(body)) > c.maxReply {
		return nil, fmt.Errorf("reply larger than %d bytes", c.maxReply)
	}
	if hresp.StatusCode != http.StatusOK {
		if reason, ok := httpFailureReason(body); ok {
			return nil, fmt.Errorf("HTTP %s: tracker failure: %s", hresp.Status, reason)
		}
		return nil, fmt.Errorf("HTTP %s", hresp.Status)
	}
	return body, nil
}

// httpDisplayURL is u for messages: without query or user info, where private trackers keep
// secrets.
func httpDisplayURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// httpAnnounceURL adds the announce parameters to base, keeping any query it already has
// (private trackers put passkeys there).
func httpAnnounceURL(base *url.URL, req AnnounceRequest) *url.URL {
	u := *base
	var q strings.Builder
	q.WriteString(u.RawQuery)
	httpAddParam(&q, "info_hash", httpEscapeBytes(req.InfoHash[:]))
	httpAddParam(&q, "peer_id", httpEscapeBytes(req.PeerID[:]))
	httpAddParam(&q, "port", strconv.Itoa(int(req.Port)))
	httpAddParam(&q, "uploaded", strconv.FormatInt(max(req.Uploaded, 0), 10))
	httpAddParam(&q, "downloaded", strconv.FormatInt(max(req.Downloaded, 0), 10))
	httpAddParam(&q, "left", strconv.FormatInt(max(req.Left, 0), 10))
	if ev := req.Event.String(); ev != "" {
		httpAddParam(&q, "event", ev)
	}
	if req.NumWant >= 0 {
		httpAddParam(&q, "numwant", strconv.Itoa(req.NumWant))
	}
	// Compact replies are a fraction of the size, and every tracker still running speaks them.
	httpAddParam(&q, "compact", "1")
	if req.NoPeerID {
		httpAddParam(&q, "no_peer_id", "1")
	}
	httpAddParam(&q, "key", fmt.Sprintf("%08x", req.Key))
	if req.TrackerID != "" {
		httpAddParam(&q, "trackerid", httpEscapeBytes([]byte(req.TrackerID)))
	}
	if req.IP.IsValid() {
		httpAddParam(&q, "ip", req.IP.String())
	}
	u.RawQuery = q.String()
	return &u
}

func httpAddParam(q *strings.Builder, key, escapedValue string) {
	if q.Len() > 0 {
		q.WriteByte('&')
	}
	q.WriteString(key)
	q.WriteByte('=')
	q.WriteString(escapedValue)
}

// httpEscapeBytes percent-encodes every byte that is not unreserved (RFC 3986). Unlike
// url.QueryEscape it never writes '+', which some trackers do not decode as a space.
func httpEscapeBytes(b []byte) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	s.Grow(len(b) * 3)
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			s.WriteByte(c)
			continue
		}
		s.WriteByte('%')
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

// httpScrapeURL derives the scrape URL from an announce URL: the text after the last '/'
// must start with "announce", which becomes "scrape".
func httpScrapeURL(announce *url.URL) (*url.URL, error) {
	u := *announce
	i := strings.LastIndexByte(u.Path, '/')
	if i < 0 || !strings.HasPrefix(u.Path[i+1:], "announce") {
		return nil, fmt.Errorf("tracker %s: no scrape URL: path does not end in /announce", httpDisplayURL(announce))
	}
	u.Path = u.Path[:i+1] + "scrape" + strings.TrimPrefix(u.Path[i+1:], "announce")
	u.RawPath = ""
	return &u, nil
}

// httpDecode decodes one bencoded value that must fill all of b.
func httpDecode(b []byte, v any) error {
	d := bencode.NewDecoder(bytes.NewReader(b))
	// Strings cannot be longer than the reply, so no length prefix may make us allocate more.
	d.MaxStrLen = int64(len(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	return d.ReadEOF()
}

// httpDict decodes b as a bencoded dictionary, leaving its values raw so each can be checked
// for the type it should have.
func httpDict(b []byte) (map[string]bencode.Bytes, error) {
	if len(b) == 0 || b[0] != 'd' {
		return nil, errors.New("reply is not a bencoded dictionary")
	}
	var m map[string]bencode.Bytes
	if err := httpDecode(b, &m); err != nil {
		return nil, fmt.Errorf("reply is not a bencoded dictionary: %w", err)
	}
	return m, nil
}

// httpFailureReason returns the tracker's "failure reason", if b is a reply that has one.
func httpFailureReason(b []byte) (string, bool) {
	m, err := httpDict(b)
	if err != nil {
		return "", false
	}
	raw, ok := m["failure reason"]
	if !ok {
		return "", false
	}
	var s string
	if httpDecode(raw, &s) != nil {
		return "(unreadable failure reason)", true
	}
	return s, true
}

// httpInt decodes m[key] as an integer, 0 when absent.
func httpInt(m map[string]bencode.Bytes, key string) (int64, error) {
	raw, ok := m[key]
	if !ok {
		return 0, nil
	}
	if len(raw) == 0 || raw[0] != 'i' {
		return 0, fmt.Errorf("%q is not an integer", key)
	}
	var n int64
	if err := httpDecode(raw, &n); err != nil {
		return 0, fmt.Errorf("%q: %w", key, err)
	}
	return n, nil
}

// httpString decodes m[key] as a string, "" when absent.
func httpString(m map[string]bencode.Bytes, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return "", fmt.Errorf("%q is not a string", key)
	}
	var s string
	if err := httpDecode(raw, &s); err != nil {
		return "", fmt.Errorf("%q: %w", key, err)
	}
	return s, nil
}

// httpSeconds turns a tracker's interval into a duration; negative or absurd values become 0
// ("not given") and the announcer applies its defaults.
func httpSeconds(n int64) time.Duration {
	if n <= 0 || n > 1<<31 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func httpCount(n int64) int {
	if n < 0 || n > 1<<31 {
		return 0
	}
	return int(n)
}

// httpFailure turns a reply's "failure reason" into an error carrying it; nil when absent.
func httpFailure(m map[string]bencode.Bytes) error {
	if _, ok := m["failure reason"]; !ok {
		return nil
	}
	reason, err := httpString(m, "failure reason")
	if err != nil {
		return fmt.Errorf("tracker failure: %w", err)
	}
	return fmt.Errorf("tracker failure: %s", reason)
}

// httpParseAnnounceReply parses a tracker's bencoded announce reply. A failure reason
// becomes an error carrying it.
func httpParseAnnounceReply(b []byte) (*AnnounceResponse, error) {
	m, err := httpDict(b)
	if err != nil {
		return nil, err
	}
	if err := httpFailure(m); err != nil {
		return nil, err
	}
	var resp AnnounceResponse
	var n int64
	if n, err = httpInt(m, "interval"); err != nil {
		return nil, err
	}
	resp.Interval = httpSeconds(n)
	if n, err = httpInt(m, "min interval"); err != nil {
		return nil, err
	}
	resp.MinInterval = httpSeconds(n)
	if n, err = httpInt(m, "complete"); err != nil {
		return nil, err
	}
	resp.Complete = httpCount(n)
	if n, err = httpInt(m, "incomplete"); err != nil {
		return nil, err
	}
	resp.Incomplete = httpCount(n)
	if resp.TrackerID, err = httpString(m, "tracker id"); err != nil {
		return nil, err
	}
	if resp.Warning, err = httpString(m, "warning message"); err != nil {
		return nil, err
	}
	if raw, ok := m["peers"]; ok {
		if len(raw) > 0 && raw[0] == 'l' {
			resp.Peers, err = httpParseDictPeers(raw)
		} else {
			resp.Peers, err = httpParseCompactPeers(m, "peers", 4)
		}
		if err != nil {
			return nil, err
		}
	}
	if _, ok := m["peers6"]; ok {
		p6, err := httpParseCompactPeers(m, "peers6", 16)
		if err != nil {
			return nil, err
		}
		resp.Peers = append(resp.Peers, p6...)
	}
	return &resp, nil
}

// httpParseCompactPeers decodes m[key] as packed address+port records (BEP 23, BEP 7).
func httpParseCompactPeers(m map[string]bencode.Bytes, key string, addrLen int) ([]Peer, error) {
	s, err := httpString(m, key)
	if err != nil {
		return nil, err
	}
	peers, err := clientCompactPeers([]byte(s), addrLen)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", key, err)
	}
	return peers, nil
}

// clientCompactPeers decodes packed address+port records, skipping port 0.
func clientCompactPeers(b []byte, addrLen int) ([]Peer, error) {
	size := addrLen + 2
	if len(b)%size != 0 {
		return nil, fmt.Errorf("compact peer list of %d bytes is not a multiple of %d", len(b), size)
	}
	peers := make([]Peer, 0, len(b)/size)
	for ; len(b) > 0; b = b[size:] {
		addr, _ := netip.AddrFromSlice(b[:addrLen])
		port := binary.BigEndian.Uint16(b[addrLen:size])
		if port == 0 {
			continue
		}
		peers = append(peers, Peer{Addr: netip.AddrPortFrom(addr, port)})
	}
	return peers, nil
}

// httpParseDictPeers decodes the original peer list: dictionaries with "ip", "port" and
// "peer id". Entries whose ip is a host name or whose port is invalid are skipped.
func httpParseDictPeers(raw []byte) ([]Peer, error) {
	var list []map[string]bencode.Bytes
	if err := httpDecode(raw, &list); err != nil {
		return nil, fmt.Errorf("peer list: %w", err)
	}
	peers := make([]Peer, 0, len(list))
	for _, d := range list {
		ip, err := httpString(d, "ip")
		if err != nil {
			return nil, fmt.Errorf("peer list: %w", err)
		}
		port, err := httpInt(d, "port")
		if err != nil {
			return nil, fmt.Errorf("peer list: %w", err)
		}
		id, err := httpString(d, "peer id")
		if err != nil {
			return nil, fmt.Errorf("peer list: %w", err)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" || port <= 0 || port > 65535 {
			continue
		}
		p := Peer{Addr: netip.AddrPortFrom(addr.Unmap(), uint16(port))}
		if id != "" {
			p.ID = []byte(id)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// httpParseScrapeReply parses a scrape reply: "files" maps raw 20-byte info-hashes to counts.
func httpParseScrapeReply(b []byte) (map[[20]byte]ScrapeStats, error) {
	m, err := httpDict(b)
	if err != nil {
		return nil, err
	}
	if err := httpFailure(m); err != nil {
		return nil, err
	}
	out := make(map[[20]byte]ScrapeStats)
	raw, ok := m["files"]
	if !ok {
		return out, nil
	}
	if len(raw) == 0 || raw[0] != 'd' {
		return nil, errors.New(`"files" is not a dictionary`)
	}
	var files map[string]map[string]bencode.Bytes
	if err := httpDecode(raw, &files); err != nil {
		return nil, fmt.Errorf(`"files": %w`, err)
	}
	for k, d := range files {
		if len(k) != 20 {
			continue
		}
		var st ScrapeStats
		var n int64
		if n, err = httpInt(d, "complete"); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		st.Complete = httpCount(n)
		if n, err = httpInt(d, "downloaded"); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		st.Downloaded = httpCount(n)
		if n, err = httpInt(d, "incomplete"); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		st.Incomplete = httpCount(n)
		out[[20]byte([]byte(k))] = st
	}
	return out, nil
}
