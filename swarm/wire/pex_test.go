package wire

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestPexRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    PexMessage
	}{
		{"empty", PexMessage{}},
		{"v4 added and dropped", PexMessage{
			Added: []PexPeer{
				{netip.MustParseAddrPort("10.0.0.1:6881"), PexSeed | PexReachable},
				{netip.MustParseAddrPort("127.0.0.12:1"), 0},
			},
			Dropped: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.2:65535")},
		}},
		{"v6 and v4 mixed", PexMessage{
			Added: []PexPeer{
				{netip.MustParseAddrPort("[2001:db8::1]:51413"), PexEncryption | PexUTP},
				{netip.MustParseAddrPort("10.0.0.2:80"), PexHolepunch},
			},
			Dropped: []netip.AddrPort{
				netip.MustParseAddrPort("[::1]:6881"),
				netip.MustParseAddrPort("10.9.9.9:9"),
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePexMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			// Parsing groups v4 before v6.
			want := PexMessage{}
			for _, v6 := range []bool{false, true} {
				for _, p := range tc.m.Added {
					if p.Addr.Addr().Is6() == v6 {
						want.Added = append(want.Added, p)
					}
				}
				for _, a := range tc.m.Dropped {
					if a.Addr().Is6() == v6 {
						want.Dropped = append(want.Dropped, a)
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q parses as %+v, want %+v", b, got, want)
			}
		})
	}
}

func TestPexEncodeKeys(t *testing.T) {
	b, err := PexMessage{}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "d5:added0:7:added.f0:7:dropped0:e"; string(b) != want {
		t.Errorf("empty message encodes as %q, want %q", b, want)
	}
	m := PexMessage{Added: []PexPeer{{netip.MustParseAddrPort("[::ffff:1.2.3.4]:258"), PexSeed}}}
	b, err = m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "d5:added6:\x01\x02\x03\x04\x01\x027:added.f1:\x027:dropped0:e"; string(b) != want {
		t.Errorf("v4-mapped peer encodes as %q, want %q", b, want)
	}
	if _, err := (PexMessage{Added: []PexPeer{{}}}).Encode(); err == nil {
		t.Error("an invalid address encodes without error")
	}
}

func TestParsePexMalformed(t *testing.T) {
	p1 := "\x0a\x00\x00\x01\x1a\xe1" // 10.0.0.1:6881
	one := []PexPeer{{Addr: netip.MustParseAddrPort("10.0.0.1:6881")}}
	for _, tc := range []struct {
		name    string
		in      string
		want    PexMessage
		wantErr bool
	}{
		{"not bencode", "hello", PexMessage{}, true},
		{"a list", "li1ee", PexMessage{}, true},
		{"empty dict", "de", PexMessage{}, false},
		{"trailing bytes ignored", "d5:added6:" + p1 + "ejunk", PexMessage{Added: one}, false},
		{"added is an integer", "d5:addedi5ee", PexMessage{}, false},
		{"partial entry dropped", "d5:added8:" + p1 + "\x01\x02e", PexMessage{Added: one}, false},
		{"flags of the wrong length ignored", "d5:added6:" + p1 + "7:added.f2:\x02\x02e", PexMessage{Added: one}, false},
		{"flags kept", "d5:added6:" + p1 + "7:added.f1:\xffe",
			PexMessage{Added: []PexPeer{{netip.MustParseAddrPort("10.0.0.1:6881"), 0xff}}}, false},
		{"port zero skipped", "d5:added12:\x0a\x00\x00\x02\x00\x00" + p1 + "e", PexMessage{Added: one}, false},
		{"unspecified skipped", "d5:added12:\x00\x00\x00\x00\x1a\xe1" + p1 + "e", PexMessage{Added: one}, false},
		{"multicast skipped", "d5:added12:\xe0\x00\x00\x01\x1a\xe1" + p1 + "e", PexMessage{Added: one}, false},
		{"v4-mapped in added6 skipped", "d5:added6:" + p1 + "6:added618:" + strings.Repeat("\x00", 10) + "\xff\xff\x0a\x00\x00\x01\x1a\xe1e",
			PexMessage{Added: one}, false},
		{"dropped with bad entries", "d7:dropped13:" + p1 + "\x00\x00\x00\x00\x00\x01\x07e",
			PexMessage{Dropped: []netip.AddrPort{one[0].Addr}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePexMessage([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParsePexCapsPeers(t *testing.T) {
	var m PexMessage
	for i := range 300 {
		m.Added = append(m.Added,
			PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1000)},
			PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 14: byte(i >> 8), 15: byte(i)}), 1000)})
		m.Dropped = append(m.Dropped,
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1000),
			netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x02, 14: byte(i >> 8), 15: byte(i)}), 1000))
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePexMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Added) != 2*MaxPexPeers || len(got.Dropped) != 2*MaxPexPeers {
		t.Fatalf("kept %d added, %d dropped; want %d each", len(got.Added), len(got.Dropped), 2*MaxPexPeers)
	}
	if got.Added[0] != m.Added[0] || got.Added[MaxPexPeers] != m.Added[1] {
		t.Errorf("kept %v and %v first; want the first of each family", got.Added[0], got.Added[MaxPexPeers])
	}
}

func FuzzParsePexMessage(f *testing.F) {
	seed, _ := PexMessage{
		Added: []PexPeer{
			{netip.MustParseAddrPort("10.0.0.1:6881"), PexSeed},
			{netip.MustParseAddrPort("[2001:db8::1]:51413"), PexReachable},
		},
		Dropped: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:1"), netip.MustParseAddrPort("[::1]:2")},
	}.Encode()
	f.Add(seed)
	f.Add([]byte("de"))
	f.Add([]byte("d5:added7:\x01\x02\x03\x04\x05\x06\x077:added.f1:\x02e"))
	f.Add([]byte("d6:added6i3e8:dropped6le5:addedd1:xi1eee"))
	f.Add([]byte("d5:added"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParsePexMessage(b)
		if err != nil {
			return
		}
		n4, n6 := 0, 0
		for _, p := range m.Added {
			if !p.Addr.IsValid() || p.Addr.Port() == 0 || p.Addr.Addr().Is4In6() {
				t.Fatalf("kept a bad added peer %v", p.Addr)
			}
			if p.Addr.Addr().Is4() {
				n4++
			} else {
				n6++
			}
		}
		if n4 > MaxPexPeers || n6 > MaxPexPeers || len(m.Dropped) > 2*MaxPexPeers {
			t.Fatalf("kept %d+%d added, %d dropped", n4, n6, len(m.Dropped))
		}
		// What was kept survives a round trip unchanged.
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		again, err := ParsePexMessage(enc)
		if err != nil {
			t.Fatalf("re-parse %q: %v", enc, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("%+v re-parses as %+v", m, again)
		}
	})
}
