package wire

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// PeerIDPrefix is torrentfs's Azureus-style client tag: "TF", version 0.0.0.1.
const PeerIDPrefix = "-TF0001-"

// NewPeerID returns prefix (cut to 20 bytes) followed by random letters and digits. Printable
// randomness keeps ids readable in logs and tracker URLs at no cost in uniqueness (62^12).
func NewPeerID(prefix string) [20]byte {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var id [20]byte
	n := copy(id[:], prefix)
	var rnd [20]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+).
	for i := n; i < len(id); i++ {
		// 256 % 62 != 0 biases a few letters slightly; harmless for an id.
		id[i] = alphabet[int(rnd[i])%len(alphabet)]
	}
	return id
}

// azureus maps the two-letter client codes of Azureus-style ids ("-XX1234-").
var azureus = map[string]string{
	"TF": "torrentfs", "TR": "Transmission", "qB": "qBittorrent", "AR": "aria2",
	"LT": "libtorrent", "lt": "libTorrent (rTorrent)", "UT": "µTorrent", "UM": "µTorrent Mac",
	"DE": "Deluge", "AZ": "Vuze", "BI": "BiglyBT", "BC": "BitComet", "BT": "BitTorrent",
	"KT": "KTorrent", "FD": "Free Download Manager", "TX": "Tixati", "WW": "WebTorrent",
	"WD": "WebTorrent Desktop", "FW": "FrostWire", "PI": "PicoTorrent", "RN": "rain",
	"GT": "anacrolix/torrent", "SD": "Thunder", "XL": "Xunlei", "BN": "Baidu Netdisk",
	"LW": "LimeWire", "AG": "Ares", "HL": "Halite", "TT": "TuoTu", "CD": "Enhanced CTorrent",
	"BF": "BitFlu", "XF": "Xfplay", "IL": "iLivid", "TB": "Torch", "BW": "BitWombat",
}

// shadow maps the one-letter codes of Shadow/Mainline-style ids ("M7-4-0--", "A2-1-37-0-").
var shadow = map[byte]string{
	'M': "Mainline", 'A': "ABC", 'O': "Osprey", 'Q': "BTQueue", 'R': "Tribler", 'S': "Shadow",
	'T': "BitTornado", 'U': "UPnP NAT",
}

// ClientName names the client that made a peer id, with its version when the id's style
// carries one, e.g. "Transmission 4.0.6". It is best effort, for logs and status output; an
// id it does not recognise comes back as its quoted printable prefix.
func ClientName(id [20]byte) string {
	s := string(id[:])
	// Azureus style: -XXvvvv-
	if s[0] == '-' && s[7] == '-' {
		code := s[1:3]
		name, ok := azureus[code]
		if !ok {
			name = "unknown client " + quotePrintable(code)
		}
		return name + " " + azureusVersion(s[3:7])
	}
	// aria2: "A2-1-37-0-" (digits separated by dashes).
	if strings.HasPrefix(s, "A2-") {
		return "aria2 " + dashedVersion(s[3:])
	}
	// Mainline/Shadow style: "M7-4-0--" (one letter, then dash-separated digits).
	if name, ok := shadow[s[0]]; ok && s[1] >= '0' && s[1] <= '9' && strings.Contains(s[1:8], "-") {
		return name + " " + dashedVersion(s[1:])
	}
	return "unknown " + quotePrintable(s[:8])
}

// azureusVersion renders the four version characters: each is a digit or a letter standing
// for 10 and up. The fourth is dropped when zero, as clients number 4.0.6 as "4060".
func azureusVersion(v string) string {
	parts := make([]string, 0, 4)
	for i := 0; i < len(v); i++ {
		c := v[i]
		var n int
		switch {
		case c >= '0' && c <= '9':
			n = int(c - '0')
		case c >= 'A' && c <= 'Z':
			n = int(c-'A') + 10
		case c >= 'a' && c <= 'z':
			n = int(c-'a') + 36
		default:
			return quotePrintable(v)
		}
		if i == 3 && n == 0 {
			break
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return strings.Join(parts, ".")
}

// dashedVersion renders "1-37-0-..." as "1.37.0": at most three fields, stopping at the first
// empty field or non-digit (the random tail of the id follows).
func dashedVersion(s string) string {
	var parts []string
	for _, f := range strings.Split(s, "-") {
		if f == "" || strings.Trim(f, "0123456789") != "" {
			break
		}
		parts = append(parts, f)
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return "?"
	}
	return strings.Join(parts, ".")
}

// quotePrintable shows bytes of an untrusted id safely in a log line.
func quotePrintable(s string) string { return fmt.Sprintf("%+q", s) }
