package wire

import (
	"strings"
	"testing"
)

func TestNewPeerID(t *testing.T) {
	a, b := NewPeerID(PeerIDPrefix), NewPeerID(PeerIDPrefix)
	if a == b {
		t.Fatalf("two peer ids are equal: %q", a)
	}
	for _, id := range [][20]byte{a, b} {
		if !strings.HasPrefix(string(id[:]), PeerIDPrefix) {
			t.Fatalf("%q lacks the prefix", id)
		}
		for _, c := range id[len(PeerIDPrefix):] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				t.Fatalf("%q has an unprintable random byte", id)
			}
		}
	}
	long := NewPeerID(strings.Repeat("x", 30))
	if string(long[:]) != strings.Repeat("x", 20) {
		t.Fatalf("over-long prefix: %q", long)
	}
}

func TestClientName(t *testing.T) {
	tests := []struct{ id, want string }{
		{"-TF0001-abcdefghijkl", "torrentfs 0.0.0.1"},
		{"-TR4060-abcdefghijkl", "Transmission 4.0.6"},
		{"-TR3000-abcdefghijkl", "Transmission 3.0.0"},
		{"-qB4630-abcdefghijkl", "qBittorrent 4.6.3"},
		{"-LT2090-abcdefghijkl", "libtorrent 2.0.9"},
		{"-lt0D80-abcdefghijkl", "libTorrent (rTorrent) 0.13.8"},
		{"-UT355W-abcdefghijkl", "µTorrent 3.5.5.32"},
		{"-DE211s-abcdefghijkl", "Deluge 2.1.1.54"},
		{"A2-1-37-0-\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", "aria2 1.37.0"},
		{"A2-1-37-0-1234567890", "aria2 1.37.0"},
		{"M7-4-0--abcdefghijkl", "Mainline 7.4.0"},
		{"-ZZ1234-abcdefghijkl", `unknown client "ZZ" 1.2.3.4`},
		{"-ZZ\x00\x01\x02\x03-abcdefghijkl", `unknown client "ZZ" "\x00\x01\x02\x03"`},
		{"\x00\x01\x02\x03\x04\x05\x06\x07abcdefghijkl", `unknown "\x00\x01\x02\x03\x04\x05\x06\a"`},
		{"exbc\x00\x38abcdefghijklmn", `unknown "exbc\x008ab"`},
	}
	for _, tt := range tests {
		var id [20]byte
		copy(id[:], tt.id)
		if got := ClientName(id); got != tt.want {
			t.Errorf("ClientName(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
