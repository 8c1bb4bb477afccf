package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestExtHandshakeRoundTrip(t *testing.T) {
	tests := []ExtHandshake{
		{},
		{M: map[string]int{"ut_metadata": 3, "ut_pex": 1, "lt_donthave": 0}, V: "torrentfs 0.1", P: 6881, Reqq: 250,
			YourIP: []byte{127, 0, 0, 1}, IPv4: []byte{10, 0, 0, 1}, IPv6: make([]byte, 16), MetadataSize: 31337},
		{M: map[string]int{"x": 255}, YourIP: make([]byte, 16)},
	}
	for _, h := range tests {
		b, err := h.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", h, err)
		}
		got, err := ParseExtHandshake(b)
		if err != nil {
			t.Fatalf("parse %q: %v", b, err)
		}
		if len(h.M) == 0 {
			h.M = nil
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("round trip of %q: %+v, want %+v", b, got, h)
		}
	}
}

func TestExtHandshakeEncodeBytes(t *testing.T) {
	b, err := ExtHandshake{M: map[string]int{"ut_metadata": 2}, P: 6881, V: "tf", MetadataSize: 100}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted, as bencode requires; m present.
	want := "d1:md11:ut_metadatai2ee13:metadata_sizei100e1:pi6881e1:v2:tfe"
	if string(b) != want {
		t.Fatalf("encoded %q, want %q", b, want)
	}
	if b, err := (ExtHandshake{}).Encode(); err != nil || string(b) != "d1:mdee" {
		t.Fatalf("empty handshake encodes as %q, %v", b, err)
	}
	for _, id := range []int{-1, 256} {
		if _, err := (ExtHandshake{M: map[string]int{"x": id}}).Encode(); err == nil {
			t.Errorf("extension id %d encoded without error", id)
		}
	}
}

func TestParseExtHandshakeHostile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ExtHandshake
		wantErr bool
	}{
		{name: "empty", in: "", wantErr: true},
		{name: "list", in: "li1ee", wantErr: true},
		{name: "integer", in: "i3e", wantErr: true},
		{name: "string", in: "3:abc", wantErr: true},
		{name: "unterminated dict", in: "d1:mde", wantErr: true},
		{name: "garbage", in: "\x00\xff\x13", wantErr: true},
		{name: "string length past the end", in: "d1:v99999999999:x", wantErr: true},
		{name: "empty dict", in: "de"},
		{name: "trailing bytes ignored", in: "d1:pi1eeXYZ", want: ExtHandshake{P: 1}},
		{name: "m not a dict", in: "d1:mli1ee1:pi5ee", want: ExtHandshake{P: 5}},
		{name: "m entries of wrong type or range", in: "d1:md1:ai300e1:bi3e1:ci-1e1:d3:abc1:eli1eeee",
			want: ExtHandshake{M: map[string]int{"b": 3}}},
		{name: "huge numbers", in: "d13:metadata_sizei99999999999999999999999e1:pi99999999999999999999e4:reqqi-5ee"},
		{name: "port out of range", in: "d1:pi65536ee"},
		{name: "metadata size over 2 GiB", in: "d13:metadata_sizei2147483648ee"},
		{name: "wrong types", in: "d1:v3:abc1:p3:abc4:reqqd1:xi1ee6:youripi4e4:ipv4i1e4:ipv6lee",
			want: ExtHandshake{V: "abc"}},
		{name: "wrong type for v", in: "d1:vi5ee"},
		{name: "address lengths", in: "d4:ipv45:12345" + "4:ipv64:1234" + "6:yourip3:abce"},
		{name: "unknown keys", in: "d12:complete_agoi1e11:upload_onlyi1e1:xd1:yli1eeee"},
		{name: "deep nesting", in: "d1:x" + strings.Repeat("l", 10000) + strings.Repeat("e", 10000) + "e", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtHandshake([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrExtHandshake) {
					t.Fatalf("got %+v, %v; want ErrExtHandshake", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
