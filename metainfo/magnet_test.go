package metainfo

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

const (
	testHex    = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	testBase32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK" // the same 20 bytes
)

// testHexV2 is a v2 info-hash in hex; testBTMH is it as a magnet's multihash.
var (
	testHexV2 = strings.Repeat("ab", 32)
	testBTMH  = "1220" + testHexV2
)

func testHashV2() Hash256 {
	var h Hash256
	hex.Decode(h[:], []byte(testHexV2))
	return h
}

func testHash() Hash {
	var h Hash
	hex.Decode(h[:], []byte(testHex))
	return h
}

func TestParseMagnet(t *testing.T) {
	tests := []struct {
		name    string
		link    string
		wantErr string
		want    *Magnet
	}{
		{"hex lower", "magnet:?xt=urn:btih:" + testHex, "", &Magnet{InfoHash: testHash()}},
		{"hex upper", "magnet:?xt=urn:btih:" + strings.ToUpper(testHex), "", &Magnet{InfoHash: testHash()}},
		{"base32", "magnet:?xt=urn:btih:" + testBase32, "", &Magnet{InfoHash: testHash()}},
		{"base32 lower case", "magnet:?xt=urn:btih:" + strings.ToLower(testBase32), "", &Magnet{InfoHash: testHash()}},
		{"scheme and urn in upper case", "MAGNET:?xt=URN:BTIH:" + testHex, "", &Magnet{InfoHash: testHash()}},
		{"everything", "magnet:?xt=urn:btih:" + testHex + "&dn=Some+Name%20%C3%A9&tr=udp%3A%2F%2Fa%3A1&tr=http://b/announce&x.pe=127.0.0.1:6881&ws=http%3A%2F%2Fws%2F", "",
			&Magnet{InfoHash: testHash(), DisplayName: "Some Name é", Trackers: []string{"udp://a:1", "http://b/announce"},
				Peers: []string{"127.0.0.1:6881"}, WebSeeds: []string{"http://ws/"}}},
		{"numbered parameters", "magnet:?xt.1=urn:btih:" + testHex + "&tr.1=udp://a&tr.2=udp://b", "",
			&Magnet{InfoHash: testHash(), Trackers: []string{"udp://a", "udp://b"}}},
		{"same hash twice, hex and base32", "magnet:?xt=urn:btih:" + testHex + "&xt=urn:btih:" + testBase32, "", &Magnet{InfoHash: testHash()}},
		{"hybrid v1+v2", "magnet:?xt=urn:btih:" + testHex + "&xt=urn:btmh:" + testBTMH, "", &Magnet{InfoHash: testHash(), InfoHashV2: testHashV2()}},
		{"hybrid, v2 first and numbered", "magnet:?xt.1=urn:btmh:" + testBTMH + "&xt.2=urn:btih:" + testBase32 + "&dn=x", "",
			&Magnet{InfoHash: testHash(), InfoHashV2: testHashV2(), DisplayName: "x"}},
		{"v2 only", "magnet:?xt=urn:btmh:" + testBTMH + "&tr=udp://a", "", &Magnet{InfoHashV2: testHashV2(), Trackers: []string{"udp://a"}}},
		{"v2 in upper case", "magnet:?xt=URN:BTMH:" + strings.ToUpper(testBTMH), "", &Magnet{InfoHashV2: testHashV2()}},
		{"same v2 hash twice", "magnet:?xt=urn:btmh:" + testBTMH + "&xt=urn:btmh:" + testBTMH, "", &Magnet{InfoHashV2: testHashV2()}},
		{"other urns ignored", "magnet:?xt=urn:ed2k:abc&xt=urn:btih:" + testHex, "", &Magnet{InfoHash: testHash()}},
		{"unescaped # in the name does not cut the rest", "magnet:?xt=urn:btih:" + testHex + "&dn=Track #1&tr=udp://a", "",
			&Magnet{InfoHash: testHash(), DisplayName: "Track #1", Trackers: []string{"udp://a"}}},
		{"empty and blank parameters", "magnet:?&xt=urn:btih:" + testHex + "&&tr=&tr=%20&unknown=1", "", &Magnet{InfoHash: testHash()}},
		{"first dn wins", "magnet:?xt=urn:btih:" + testHex + "&dn=a&dn=b", "", &Magnet{InfoHash: testHash(), DisplayName: "a"}},

		{"wrong scheme", "http://example.com/?xt=urn:btih:" + testHex, `does not start with "magnet:"`, nil},
		{"a file name", "file.torrent", `does not start with "magnet:"`, nil},
		{"no query", "magnet:xt=urn:btih:" + testHex, "no '?'", nil},
		{"missing xt", "magnet:?dn=x&tr=udp://a", "no xt=urn:btih: or xt=urn:btmh: info-hash", nil},
		{"empty", "magnet:?", "no xt=urn:btih:", nil},
		{"only other urns", "magnet:?xt=urn:ed2k:abc&xt=urn:sha1:def", "no BitTorrent info-hash", nil},
		{"bad hex", "magnet:?xt=urn:btih:" + strings.Repeat("zz", 20), "is not hex", nil},
		{"bad base32", "magnet:?xt=urn:btih:" + strings.Repeat("1", 32), "is not base32", nil},
		{"base32 with padding", "magnet:?xt=urn:btih:" + testBase32[:24] + "========", "is not base32", nil},
		{"too short", "magnet:?xt=urn:btih:" + testHex[:39], "has 39 characters; want 40 (hex) or 32 (base32)", nil},
		{"too long", "magnet:?xt=urn:btih:" + testHex + "0", "has 41 characters", nil},
		{"empty hash", "magnet:?xt=urn:btih:", "has 0 characters", nil},
		{"btmh of another hash function", "magnet:?xt=urn:btmh:1114" + testHex, "not a SHA-256 multihash", nil},
		{"btmh without its multihash prefix", "magnet:?xt=urn:btmh:" + testHexV2, "not a SHA-256 multihash", nil},
		{"btmh too short", "magnet:?xt=urn:btmh:" + testBTMH[:67], "not a SHA-256 multihash", nil},
		{"btmh not hex", "magnet:?xt=urn:btmh:1220" + strings.Repeat("zz", 32), "is not hex", nil},
		{"two different btmh", "magnet:?xt=urn:btmh:" + testBTMH + "&xt=urn:btmh:1220" + strings.Repeat("cd", 32), "two different btmh", nil},
		{"all-zero btih", "magnet:?xt=urn:btih:" + strings.Repeat("0", 40), "all zeros", nil},
		{"all-zero btmh beside a good btih", "magnet:?xt=urn:btih:" + testHex + "&xt=urn:btmh:1220" + strings.Repeat("0", 64), "all zeros", nil},
		{"two different btih", "magnet:?xt=urn:btih:" + testHex + "&xt=urn:btih:" + strings.Repeat("0", 40), "two different btih", nil},
		{"bad percent-encoding in a value", "magnet:?xt=urn:btih:" + testHex + "&dn=%zz", `parameter "dn"`, nil},
		{"truncated percent-encoding", "magnet:?xt=urn:btih:" + testHex + "&tr=udp%3", "invalid URL escape", nil},
		{"bad percent-encoding in a key", "magnet:?x%t=1&xt=urn:btih:" + testHex, "invalid URL escape", nil},
		{"percent-encoded hash", "magnet:?xt=urn%3Abtih%3A" + testHex, "", &Magnet{InfoHash: testHash()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMagnet(tt.link)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMagnet: %v; want error containing %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "invalid magnet link: ") {
					t.Errorf("error %q does not say the link is invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMagnet: %v", err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Fatalf("ParseMagnet = %+v; want %+v", m, tt.want)
			}
			checkMagnetRoundTrip(t, m)
		})
	}
}

// checkMagnetRoundTrip asserts that String renders a link that parses back to the same magnet.
func checkMagnetRoundTrip(t testing.TB, m *Magnet) {
	t.Helper()
	back, err := ParseMagnet(m.String())
	if err != nil {
		t.Fatalf("ParseMagnet(%q): %v", m.String(), err)
	}
	if back.InfoHash != m.InfoHash || back.InfoHashV2 != m.InfoHashV2 || back.DisplayName != m.DisplayName ||
		!reflect.DeepEqual(back.Trackers, m.Trackers) || !reflect.DeepEqual(back.Peers, m.Peers) ||
		!reflect.DeepEqual(back.WebSeeds, m.WebSeeds) {
		t.Fatalf("round trip through %q: got %+v; want %+v", m.String(), back, m)
	}
}

func TestIsMagnet(t *testing.T) {
	for s, want := range map[string]bool{
		"magnet:?xt=x": true, "Magnet:": true, "magnet": false, "x.torrent": false, "": false, "/magnet:x": false,
	} {
		if IsMagnet(s) != want {
			t.Errorf("IsMagnet(%q) = %v", s, !want)
		}
	}
}

func TestMagnetString(t *testing.T) {
	m := &Magnet{InfoHash: testHash(), DisplayName: "a&b=c d#e", Trackers: []string{"udp://x/?a=1&b=2"}}
	want := "magnet:?xt=urn:btih:" + testHex + "&dn=a%26b%3Dc+d%23e&tr=udp%3A%2F%2Fx%2F%3Fa%3D1%26b%3D2"
	if got := m.String(); got != want {
		t.Fatalf("String = %q; want %q", got, want)
	}
	checkMagnetRoundTrip(t, m)

	m.InfoHashV2 = testHashV2()
	if got, want := m.String(), "magnet:?xt=urn:btih:"+testHex+"&xt=urn:btmh:"+testBTMH+"&dn="; !strings.HasPrefix(got, want) {
		t.Fatalf("hybrid String = %q; want it to start %q", got, want)
	}
	checkMagnetRoundTrip(t, m)
	m.InfoHash = Hash{}
	if got, want := m.String(), "magnet:?xt=urn:btmh:"+testBTMH+"&dn="; !strings.HasPrefix(got, want) {
		t.Fatalf("v2 String = %q; want it to start %q", got, want)
	}
	checkMagnetRoundTrip(t, m)
}
