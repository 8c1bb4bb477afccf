package lsd

import (
	"errors"
	"strings"
	"testing"
)

var ihA = [20]byte{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 0xff}
var ihB = [20]byte{0xbb}

const hexA = "aa0102030405060708090a0b0c0d0e0f101112ff"

func TestParseMessage(t *testing.T) {
	long := "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n"
	for i := 0; i < maxInfohashes+5; i++ {
		long += "Infohash: " + strings.Repeat("0", 38) + string("0123456789abcdefghijklmnopqrstuvwxyz"[i/16]) + string("0123456789abcdef"[i%16]) + "\r\n"
	}
	for _, tc := range []struct {
		name string
		in   string
		port uint16
		ihs  int
		ok   bool
	}{
		{"bep14", "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: " + hexA + "\r\ncookie: x\r\n\r\n\r\n", 6881, 1, true},
		{"bare LF, any case, upper hex", "BT-SEARCH * HTTP/1.1\nport:7000\nINFOHASH: " + strings.ToUpper(hexA) + "\n\n", 7000, 1, true},
		{"two torrents and a repeat", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + hexA + "\r\nInfohash: bb00000000000000000000000000000000000000\r\nInfohash: " + hexA + "\r\n\r\n", 1, 2, true},
		{"no terminating blank line", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + hexA, 1, 1, true},
		{"capped infohashes", long, 1, maxInfohashes, true},
		{"no port", "BT-SEARCH * HTTP/1.1\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"port 0", "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"port too big", "BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"two ports", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"no infohash", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n", 0, 0, false},
		{"short infohash", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abcd\r\n\r\n", 0, 0, false},
		{"not hex", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + strings.Repeat("zz", 20) + "\r\n\r\n", 0, 0, false},
		{"other request", "M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"header without colon", "BT-SEARCH * HTTP/1.1\r\nPort 1\r\nInfohash: " + hexA + "\r\n\r\n", 0, 0, false},
		{"too long", "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + hexA + "\r\nX: " + strings.Repeat("x", maxMessage) + "\r\n\r\n", 0, 0, false},
		{"empty", "", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMessage([]byte(tc.in))
			if !tc.ok {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("parse = %+v, %v; want errMalformed", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.port != tc.port || len(m.infohashes) != tc.ihs {
				t.Errorf("port %d, %d infohashes; want %d, %d", m.port, len(m.infohashes), tc.port, tc.ihs)
			}
			if m.infohashes[0] != ihA && tc.name != "capped infohashes" {
				t.Errorf("first infohash %x, want %s", m.infohashes[0], hexA)
			}
		})
	}
}

func TestFormatParsesBack(t *testing.T) {
	want := message{port: 6881, infohashes: [][20]byte{ihA, ihB}, cookie: "c00k1e"}
	b := formatMessage(DefaultGroup4, want)
	if !strings.HasPrefix(string(b), "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: "+hexA+"\r\n") ||
		!strings.HasSuffix(string(b), "cookie: c00k1e\r\n\r\n\r\n") {
		t.Errorf("formatted %q", b)
	}
	got, err := parseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.port != want.port || got.cookie != want.cookie || len(got.infohashes) != 2 || got.infohashes[0] != ihA || got.infohashes[1] != ihB {
		t.Errorf("parsed back %+v, want %+v", got, want)
	}
	full := message{port: 65535, cookie: strings.Repeat("c", 16)}
	for i := range maxInfohashes {
		full.infohashes = append(full.infohashes, [20]byte{byte(i)})
	}
	if b := formatMessage(DefaultGroup6, full); len(b) > maxMessage {
		t.Errorf("a full message is %d bytes, more than %d", len(b), maxMessage)
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add(formatMessage(DefaultGroup4, message{port: 6881, infohashes: [][20]byte{ihA}, cookie: "x"}))
	f.Add([]byte("BT-SEARCH * HTTP/1.1\nPort: 1\nInfohash: " + hexA + "\nInfohash: " + hexA + "\n"))
	f.Add([]byte("BT-SEARCH * HTTP/1.1\r\nPort: 99999\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			return
		}
		if m.port == 0 || len(m.infohashes) == 0 || len(m.infohashes) > maxInfohashes || len(m.cookie) > maxCookie {
			t.Fatalf("accepted %+v from %q", m, b)
		}
		// What we accept, we can say again, and it means the same.
		m2, err := parseMessage(formatMessage(DefaultGroup4, m))
		if err != nil || m2.port != m.port || len(m2.infohashes) != len(m.infohashes) {
			t.Fatalf("round trip of %+v: %+v, %v", m, m2, err)
		}
	})
}
