package wire

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

// allMessages has one message of every kind the package knows, plus an unknown ID.
var allMessages = []Message{
	{Keepalive: true},
	{ID: Choke},
	{ID: Unchoke},
	{ID: Interested},
	{ID: NotInterested},
	{ID: Have, Index: 0xdeadbeef},
	{ID: Bitfield, Bitfield: []byte{0xff, 0x80}},
	{ID: Request, Index: 1, Begin: 16384, Length: 16384},
	{ID: Piece, Index: 7, Begin: 32768, Length: 5, Block: []byte("hello")},
	{ID: Piece, Index: 7, Begin: 0, Length: 0, Block: []byte{}},
	{ID: Cancel, Index: 1, Begin: 2, Length: 3},
	{ID: Port, Port: 6881},
	{ID: Suggest, Index: 42},
	{ID: HaveAll},
	{ID: HaveNone},
	{ID: Reject, Index: 4, Begin: 5, Length: 6},
	{ID: AllowedFast, Index: 1313},
	{ID: Extended, ExtID: 0, Payload: []byte("d1:md11:ut_metadatai3eee")},
	{ID: Extended, ExtID: 3, Payload: []byte{}},
	{ID: HashRequest, Payload: []byte("0123456789abcdef0123456789abcdef\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x07")},
	{ID: HashReject, Payload: make([]byte, 48)},
	{ID: Hashes, Payload: make([]byte, 48+2*32)},
	{ID: 99, Payload: []byte("future")},
}

// wantFrames are the exact bytes of some frames, checked against BEP 3 and BEP 6 by hand.
var wantFrames = map[string]Message{
	"\x00\x00\x00\x00":                     {Keepalive: true},
	"\x00\x00\x00\x01\x00":                 {ID: Choke},
	"\x00\x00\x00\x05\x04\x00\x00\x01\x02": {ID: Have, Index: 0x102},
	"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00": {ID: Request, Index: 1, Begin: 0x4000, Length: 0x4000},
	"\x00\x00\x00\x0b\x07\x00\x00\x00\x02\x00\x00\x00\x03ab":               {ID: Piece, Index: 2, Begin: 3, Length: 2, Block: []byte("ab")},
	"\x00\x00\x00\x03\x09\x1a\xe1":                                         {ID: Port, Port: 6881},
	"\x00\x00\x00\x01\x0e":                                                 {ID: HaveAll},
	"\x00\x00\x00\x05\x11\x00\x00\x05\x21":                                 {ID: AllowedFast, Index: 1313},
	"\x00\x00\x00\x04\x14\x00de":                                           {ID: Extended, ExtID: 0, Payload: []byte("de")},
}

func TestMessageRoundTrip(t *testing.T) {
	var stream []byte
	for _, m := range allMessages {
		frame := m.AppendTo(nil)
		if len(frame) != m.FrameLen() {
			t.Errorf("%v: FrameLen %d, AppendTo wrote %d", m, m.FrameLen(), len(frame))
		}
		stream = append(stream, frame...)
	}
	// A reader that hands out one byte at a time exercises every buffer refill path.
	for _, name := range []string{"whole", "one-byte"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(stream)
			if name == "one-byte" {
				src = &oneByteReader{stream}
			}
			rd := NewReader(src, 0)
			for _, want := range allMessages {
				got, err := rd.Read()
				if err != nil {
					t.Fatalf("read %v: %v", want, err)
				}
				if !equalMessages(got, want) {
					t.Fatalf("read %#v, want %#v", got, want)
				}
			}
			if _, err := rd.Read(); err != io.EOF {
				t.Fatalf("after the last message: %v, want io.EOF", err)
			}
		})
	}
}

func TestMessageBytes(t *testing.T) {
	for frame, m := range wantFrames {
		if got := m.AppendTo(nil); string(got) != frame {
			t.Errorf("%v encodes as %q, want %q", m, got, frame)
		}
		got, err := NewReader(strings.NewReader(frame), 0).Read()
		if err != nil || !equalMessages(got, m) {
			t.Errorf("%q decodes as %#v, %v; want %#v", frame, got, err, m)
		}
	}
}

func TestAppendPieceHeader(t *testing.T) {
	block := bytes.Repeat([]byte{0xab}, 16384)
	m := Message{ID: Piece, Index: 9, Begin: 16384, Block: block}
	h := AppendPieceHeader(nil, 9, 16384, len(block))
	if len(h) != PieceHeaderLen {
		t.Fatalf("header is %d bytes, want %d", len(h), PieceHeaderLen)
	}
	if got, want := append(h, block...), m.AppendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("header+block differs from AppendTo")
	}
}

// equalMessages compares messages treating nil and empty slices alike.
func equalMessages(a, b Message) bool {
	norm := func(m Message) Message {
		for _, p := range []*[]byte{&m.Bitfield, &m.Block, &m.Payload} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		return m
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}
