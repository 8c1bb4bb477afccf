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
	DisplayName string   // dn; untrusted: run CheckName before using it as a file name
	Trackers    []string // tr, in order
	Peers       []string // x.pe: host:port of peers to dial directly
	WebSeeds    []string // ws
}

// IsMagnet tells whether s looks like a magnet link rather than a file name.
func IsMagnet(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "magnet:")
}

// MagnetError is what ParseMagnet returns for a link it cannot use.
type MagnetError struct{ Msg string }

func (e *MagnetError) Error() string { return "invalid magnet link: " + e.Msg }

func badMagnet(format string, args ...any) error {
	return &MagnetError{Msg: fmt.Sprintf(format, args...)}
}

// ParseMagnet parses a magnet link. Only BitTorrent v1 info-hashes (urn:btih, in hex or
// base32) are supported; a hybrid link that also carries a v2 hash (urn:btmh) is fine.
//
// The query is split by hand rather than with net/url: a '#' in an unescaped display name would
// otherwise be taken for a fragment and silently cut the parameters after it. Parameters may be
// numbered (xt.1, tr.2) as the magnet URI draft allows.
func ParseMagnet(s string) (*Magnet, error) {
	if !IsMagnet(s) {
		return nil, badMagnet("does not start with \"magnet:\"")
	}
	q, ok := strings.CutPrefix(s[len("magnet:"):], "?")
	if !ok {
		return nil, badMagnet("no '?' after \"magnet:\"")
	}
	m := &Magnet{}
	found, sawV2 := false, false
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		rk, rv, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return nil, badMagnet("parameter %q: %v", rk, err)
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return nil, badMagnet("parameter %q: %v", k, err)
		}
		switch magnetKey(k) {
		case "xt":
			const btih, btmh = "urn:btih:", "urn:btmh:"
			if !hasPrefixFold(v, btih) {
				sawV2 = sawV2 || hasPrefixFold(v, btmh)
				continue // other urns (ed2k, sha1, v2) name the content in ways we cannot use
			}
			h, err := parseBTIH(v[len(btih):])
			if err != nil {
				return nil, badMagnet("%v", err)
			}
			if found && h != m.InfoHash {
				return nil, badMagnet("two different btih info-hashes (%s and %s)", m.InfoHash, h)
			}
			m.InfoHash, found = h, true
		case "dn":
			if m.DisplayName == "" {
				m.DisplayName = v
			}
		case "tr":
			m.Trackers = appendNonEmpty(m.Trackers, v)
		case "x.pe":
			m.Peers = appendNonEmpty(m.Peers, v)
		case "ws":
			m.WebSeeds = appendNonEmpty(m.WebSeeds, v)
		}
	}
	if !found {
		if sawV2 {
			return nil, badMagnet("only a BitTorrent v2 (urn:btmh) hash is given; v1 (urn:btih) is required")
		}
		return nil, badMagnet("no xt=urn:btih: info-hash")
	}
	return m, nil
}

// magnetKey strips a numeric suffix (xt.1 -> xt), leaving x.pe alone.
func magnetKey(k string) string {
	base, n, ok := strings.Cut(k, ".")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return k
	}
	return base
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func parseBTIH(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 2 * HashSize:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return h, fmt.Errorf("info-hash %q is not hex", s)
		}
	case 32: // base32 of 20 bytes, no padding needed
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

func appendNonEmpty(list []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		list = append(list, s)
	}
	return list
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

// ParseHash parses an info-hash written as 40 hex digits or 32 base32 characters.
func ParseHash(s string) (Hash, error) { return parseBTIH(s) }
