package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestMetadataMessageRoundTrip(t *testing.T) {
	tests := []struct {
		m    MetadataMessage
		want string // the exact payload, from BEP 9's examples
	}{
		{MetadataMessage{Type: MetadataRequest, Piece: 0}, "d8:msg_typei0e5:piecei0ee"},
		{MetadataMessage{Type: MetadataData, Piece: 0, TotalSize: 3425, Data: []byte("xxxx")}, "d8:msg_typei1e5:piecei0e10:total_sizei3425eexxxx"},
		{MetadataMessage{Type: MetadataReject, Piece: 7}, "d8:msg_typei2e5:piecei7ee"},
	}
	for _, tt := range tests {
		b, err := tt.m.AppendTo(nil)
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v encodes as %q, %v; want %q", tt.m, b, err, tt.want)
		}
		got, err := ParseMetadataMessage(b)
		if err != nil || !reflect.DeepEqual(got, tt.m) {
			t.Errorf("%q parses as %+v, %v; want %+v", b, got, err, tt.m)
		}
	}
}

func TestParseMetadataMessageBad(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"not a dict", "li1ee"},
		{"no msg_type", "d5:piecei0ee"},
		{"msg_type out of range", "d8:msg_typei3e5:piecei0ee"},
		{"msg_type a string", "d8:msg_type1:05:piecei0ee"},
		{"no piece", "d8:msg_typei0ee"},
		{"negative piece", "d8:msg_typei0e5:piecei-1ee"},
		{"huge piece", "d8:msg_typei0e5:piecei99999999999999999999ee"},
		{"data without total_size", "d8:msg_typei1e5:piecei0eexx"},
		{"data with zero total_size", "d8:msg_typei1e5:piecei0e10:total_sizei0eexx"},
		{"trailing bytes on a request", "d8:msg_typei0e5:piecei0eexx"},
		{"data over a piece", "d8:msg_typei1e5:piecei0e10:total_sizei99999ee" + string(bytes.Repeat([]byte{1}, MetadataPieceLen+1))},
	}
	for _, tt := range tests {
		if m, err := ParseMetadataMessage([]byte(tt.in)); !errors.Is(err, ErrMetadataMessage) {
			t.Errorf("%s: got %+v, %v; want ErrMetadataMessage", tt.name, m, err)
		}
	}
	// Extra keys are fine.
	m, err := ParseMetadataMessage([]byte("d8:msg_typei2e5:piecei1e10:total_sizei5e1:xlee"))
	if err != nil || m.Type != MetadataReject || m.Piece != 1 {
		t.Errorf("reject with extra keys: %+v, %v", m, err)
	}
}

func FuzzMetadataMessage(f *testing.F) {
	f.Add([]byte("d8:msg_typei1e5:piecei0e10:total_sizei3425eexxxx"))
	f.Add([]byte("d8:msg_typei0e5:piecei0ee"))
	f.Add([]byte("d8:msg_typei2e5:piecei7e1:xd1:yleee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadataMessage(data)
		if err != nil {
			return
		}
		enc, err := m.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseMetadataMessage(enc)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", data, m, enc, again, err)
		}
	})
}
