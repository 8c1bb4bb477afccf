package utp

import (
	"bytes"
	"testing"
)

func TestPacketRoundTrip(t *testing.T) {
	for _, h := range []header{
		{typ: stSyn, connID: 7, ts: 1, tsDiff: 2, wnd: 3, seq: 4, ack: 5},
		{typ: stData, connID: 65535, ts: 1 << 31, wnd: 1 << 20, seq: 65535, payload: []byte("hello")},
		{typ: stState, connID: 9, seq: 1, ack: 2, sack: []byte{1, 2, 3, 4}},
		// libtorrent's lengths: whole bytes for its reorder span, no padding to 4.
		{typ: stData, connID: 9, seq: 1, ack: 2, sack: []byte{0, 0, 0x80}, payload: []byte("req")},
		{typ: stState, connID: 9, seq: 1, ack: 2, sack: bytes.Repeat([]byte{0xff}, 255)},
	} {
		b := h.encode(nil)
		g, err := decode(b)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if g.typ != h.typ || g.connID != h.connID || g.ts != h.ts || g.tsDiff != h.tsDiff || g.wnd != h.wnd ||
			g.seq != h.seq || g.ack != h.ack || !bytes.Equal(g.sack, h.sack) || !bytes.Equal(g.payload, h.payload) {
			t.Errorf("round trip: sent %+v, got %+v", h, g)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	ok := (&header{typ: stData, payload: []byte("x")}).encode(nil)
	cases := map[string][]byte{
		"short":          ok[:19],
		"version 2":      append([]byte{stData<<4 | 2}, ok[1:]...),
		"type 5":         append([]byte{5<<4 | version}, ok[1:]...),
		"ext runs off":   append(append([]byte{ok[0], extSACK}, ok[2:20]...), 0, 8, 1),
		"ext no room":    append(append([]byte{ok[0], 2}, ok[2:20]...), 0),
		"endless chains": append(append([]byte{ok[0], 2}, ok[2:20]...), bytes.Repeat([]byte{2, 0}, 20)...),
	}
	for name, b := range cases {
		if _, err := decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// An unknown extension is skipped.
	b := append(append([]byte{ok[0], 2}, ok[2:20]...), 0, 2, 9, 9, 'p')
	h, err := decode(b)
	if err != nil || string(h.payload) != "p" {
		t.Errorf("unknown extension: %v %q", err, h.payload)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add((&header{typ: stState, sack: []byte{1, 0, 0, 0}}).encode(nil))
	f.Add((&header{typ: stData, payload: []byte("abc")}).encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(h.encode(nil))
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if again.seq != h.seq || again.ack != h.ack || !bytes.Equal(again.payload, h.payload) || !bytes.Equal(again.sack, h.sack) {
			t.Fatalf("re-encode changed the packet")
		}
	})
}
