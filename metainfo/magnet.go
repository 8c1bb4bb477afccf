package metainfo

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// Magnet is a parsed magnet link (BEP 9).
type Magnet struct {
	InfoHash    Hash
	DisplayName string   // dn
	Trackers    []string // tr, in order
	Peers       []string // x.pe: host:port of peers to dial directly
	WebSeeds    []string // ws
}

// IsMagnet tells whether s looks like a magnet link rather than a file name.
func IsMagnet(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "magnet:")
}

// ParseMagnet parses a magnet link. Only BitTorrent v1 info-hashes (urn:btih, in hex or
// base32) are supported.
func ParseMagnet(s string) (*Magnet, error) {
	if !IsMagnet(s) {
		return nil, fmt.Errorf("invalid magnet link: does not start with \"magnet:\"")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid magnet link: %v", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("invalid magnet link: %v", err)
	}
	m := &Magnet{}
	found, sawV2 := false, false
	for _, xt := range q["xt"] {
		const prefix = "urn:btih:"
		if len(xt) < len(prefix) || !strings.EqualFold(xt[:len(prefix)], prefix) {
			if strings.HasPrefix(strings.ToLower(xt), "urn:btmh:") {
				sawV2 = true
			}
			continue
		}
		h, err := parseBTIH(xt[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("invalid magnet link: %v", err)
		}
		if found && h != m.InfoHash {
			return nil, fmt.Errorf("invalid magnet link: two different btih info-hashes")
		}
		m.InfoHash, found = h, true
	}
	if !found {
		if sawV2 {
			return nil, fmt.Errorf("invalid magnet link: only BitTorrent v2 (urn:btmh) hash given; v1 (urn:btih) is required")
		}
		return nil, fmt.Errorf("invalid magnet link: no xt=urn:btih: info-hash")
	}
	m.DisplayName = q.Get("dn")
	m.Trackers = nonEmpty(q["tr"])
	m.Peers = nonEmpty(q["x.pe"])
	m.WebSeeds = nonEmpty(q["ws"])
	return m, nil
}

func parseBTIH(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return h, fmt.Errorf("info-hash %q is not hex", s)
		}
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil || len(b) != HashSize {
			return h, fmt.Errorf("info-hash %q is not base32", s)
		}
		copy(h[:], b)
	default:
		return h, fmt.Errorf("info-hash %q has %d characters; want 40 (hex) or 32 (base32)", s, len(s))
	}
	return h, nil
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// String renders the link with a hex info-hash, the form every client accepts.
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(m.InfoHash.HexString())
	if m.DisplayName != "" {
		b.WriteString("&dn=")
		b.WriteString(url.QueryEscape(m.DisplayName))
	}
	for _, t := range m.Trackers {
		b.WriteString("&tr=")
		b.WriteString(url.QueryEscape(t))
	}
	for _, p := range m.Peers {
		b.WriteString("&x.pe=")
		b.WriteString(url.QueryEscape(p))
	}
	for _, w := range m.WebSeeds {
		b.WriteString("&ws=")
		b.WriteString(url.QueryEscape(w))
	}
	return b.String()
}
