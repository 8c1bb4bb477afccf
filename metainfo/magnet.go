package metainfo

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// Magnet is a parsed magnet link (BEP 9). It names its torrent by a v1 info-hash, a v2 one
// (BEP 52), or both for a hybrid; an absent hash is zero.
type Magnet struct {
	InfoHash    Hash     // urn:btih
	InfoHashV2  Hash256  // urn:btmh with a SHA-256 multihash
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

// HasV1 tells whether the link carries a v1 info-hash.
func (m *Magnet) HasV1() bool { return m.InfoHash != Hash{} }

// HasV2 tells whether the link carries a v2 info-hash.
func (m *Magnet) HasV2() bool { return !m.InfoHashV2.IsZero() }

// ParseMagnet parses a magnet link. It takes a v1 info-hash (xt=urn:btih: in hex or base32),
// a v2 one (xt=urn:btmh: with a SHA-256 multihash, "1220" and 64 hex digits), or both in one
// link; at least one must be there.
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
	found, foundV2, sawOther := false, false, false
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
			switch {
			case hasPrefixFold(v, btih):
				h, err := parseBTIH(v[len(btih):])
				if err != nil {
					return nil, badMagnet("%v", err)
				}
				if found && h != m.InfoHash {
					return nil, badMagnet("two different btih info-hashes (%s and %s)", m.InfoHash, h)
				}
				m.InfoHash, found = h, true
			case hasPrefixFold(v, btmh):
				h, err := parseBTMH(v[len(btmh):])
				if err != nil {
					return nil, badMagnet("%v", err)
				}
				if foundV2 && h != m.InfoHashV2 {
					return nil, badMagnet("two different btmh info-hashes (%s and %s)", m.InfoHashV2, h)
				}
				m.InfoHashV2, foundV2 = h, true
			default:
				sawOther = true // other urns (ed2k, sha1) name the content in ways we cannot use
			}
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
	if !found && !foundV2 {
		if sawOther {
			return nil, badMagnet("no BitTorrent info-hash (xt=urn:btih: or xt=urn:btmh:1220...)")
		}
		return nil, badMagnet("no xt=urn:btih: or xt=urn:btmh: info-hash")
	}
	// A zero hash stands for "absent" in Magnet; no real torrent hashes to it.
	if found && !m.HasV1() || foundV2 && !m.HasV2() {
		return nil, badMagnet("info-hash is all zeros")
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

// parseBTMH reads the multihash of a v2 info-hash: 0x12 (SHA2-256), 0x20 (32 bytes), the
// digest, all in hex.
func parseBTMH(s string) (Hash256, error) {
	var h Hash256
	const sha256Prefix = "1220"
	if len(s) != len(sha256Prefix)+2*Hash256Size || !strings.HasPrefix(s, sha256Prefix) {
		return h, fmt.Errorf("btmh info-hash %q is not a SHA-256 multihash (1220 and 64 hex digits)", s)
	}
	if _, err := hex.Decode(h[:], []byte(s[len(sha256Prefix):])); err != nil {
		return h, fmt.Errorf("btmh info-hash %q is not hex", s)
	}
	return h, nil
}

func appendNonEmpty(list []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		list = append(list, s)
	}
	return list
}

// String renders the link with hex info-hashes, the form every client accepts: the v1 one
// (btih) first, then the v2 one (btmh) when known.
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?")
	if m.HasV1() || !m.HasV2() {
		b.WriteString("xt=urn:btih:")
		b.WriteString(m.InfoHash.HexString())
		if m.HasV2() {
			b.WriteString("&")
		}
	}
	if m.HasV2() {
		b.WriteString("xt=urn:btmh:1220")
		b.WriteString(m.InfoHashV2.HexString())
	}
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
