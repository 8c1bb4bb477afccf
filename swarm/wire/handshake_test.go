package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHandshakeRoundTrip(t *testing.T) {
	var h Handshake
	h.Reserved.SetExtended(true)
	h.Reserved.SetFast(true)
	copy(h.InfoHash[:], "0123456789abcdefghij")
	h.PeerID = NewPeerID(PeerIDPrefix)
	var buf bytes.Buffer
	if err := WriteHandshake(&buf, h); err != nil {
		t.Fatal(err)
	}
	want := "\x13BitTorrent protocol\x00\x00\x00\x00\x00\x10\x00\x04" + "0123456789abcdefghij" + string(h.PeerID[:])
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
	res, ih, err := ReadHandshakeHeader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ReadPeerID(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := (Handshake{res, ih, id}); got != h {
		t.Fatalf("read %+v, want %+v", got, h)
	}
	if !res.Extended() || !res.Fast() || res.DHT() {
		t.Fatalf("reserved bits %x", res)
	}
}

func TestReservedBits(t *testing.T) {
	tests := []struct {
		set  func(*Reserved, bool)
		get  func(Reserved) bool
		want Reserved
	}{
		{(*Reserved).SetExtended, Reserved.Extended, Reserved{5: 0x10}},
		{(*Reserved).SetDHT, Reserved.DHT, Reserved{7: 0x01}},
		{(*Reserved).SetFast, Reserved.Fast, Reserved{7: 0x04}},
		{(*Reserved).SetV2, Reserved.V2, Reserved{7: 0x10}},
	}
	for _, tt := range tests {
		var r Reserved
		tt.set(&r, true)
		if r != tt.want || !tt.get(r) {
			t.Errorf("set: %x, want %x", r, tt.want)
		}
		// Other bits (e.g. another client's extensions) survive set and clear.
		r = Reserved{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		tt.set(&r, false)
		if tt.get(r) || r[5]&0xef != 0xef || r[7]|0x15 != 0xff {
			t.Errorf("clear: %x", r)
		}
	}
}

func TestReadHandshakeBad(t *testing.T) {
	good := string((&Handshake{}).AppendTo(nil))
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"wrong length byte", "\x14" + good[1:], ErrBadProtocol},
		{"wrong protocol string", "\x13BitTorrent Protocol" + good[20:], ErrBadProtocol},
		{"http request", "GET /announce HTTP/1.1\r\n\r\n" + strings.Repeat("x", 40), ErrBadProtocol},
		{"encrypted (BEP 8 style) garbage", strings.Repeat("\x8f", 96), ErrBadProtocol},
		{"empty", "", io.EOF},
		{"cut in the protocol string", good[:10], io.ErrUnexpectedEOF},
		{"cut in the info-hash", good[:40], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadHandshakeHeader(strings.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ReadPeerID(strings.NewReader("short")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short peer id: %v", err)
	}
}

func TestReadHandshakeHeaderStopsAtInfoHash(t *testing.T) {
	// The accepting side reads the header, then answers before the peer id arrives; reading
	// the header must not consume a byte more.
	h := Handshake{InfoHash: [20]byte{1, 2, 3}, PeerID: [20]byte{9, 9, 9}}
	r := bytes.NewReader(h.AppendTo(nil))
	if _, _, err := ReadHandshakeHeader(r); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 20 {
		t.Fatalf("%d bytes left after the header, want 20", r.Len())
	}
}
