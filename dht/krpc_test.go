package dht

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestKRPCRoundTrip(t *testing.T) {
	id := strings.Repeat("a", 20)
	msgs := []msg{
		{T: "aa", Y: "q", Q: "ping", A: &msgArgs{ID: id}},
		{T: "ab", Y: "q", Q: "find_node", A: &msgArgs{ID: id, Target: strings.Repeat("t", 20), Want: []string{"n4", "n6"}}},
		{T: "ac", Y: "q", Q: "announce_peer", A: &msgArgs{ID: id, InfoHash: strings.Repeat("i", 20), Port: 6881, ImpliedPort: 1, Token: "tok"}},
		{T: "ad", Y: "r", R: &msgReply{ID: id, Nodes: strings.Repeat("n", 26), Token: "x", Values: []string{"abcdef"}}, IP: "\x7f\x00\x00\x01\x1a\xe1"},
		{T: "ae", Y: "e", E: &krpcError{Code: errProtocol, Msg: "bad token"}},
		{T: "af", Y: "r", R: &msgReply{ID: id, Nodes6: strings.Repeat("n", 38)}, RO: 1},
	}
	for _, m := range msgs {
		b, err := encodeMsg(&m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := decodeMsg(b)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %q:\n got %+v\nwant %+v", b, got, m)
		}
	}
}

func TestKRPCWireForm(t *testing.T) {
	// The example ping of BEP 5, byte for byte.
	in := "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
	m, err := decodeMsg([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Q != "ping" || m.T != "aa" || m.A.ID != "abcdefghij0123456789" {
		t.Fatalf("decoded %+v", m)
	}
	out, err := encodeMsg(&m)
	if err != nil || string(out) != in {
		t.Fatalf("encoded %q, %v; want %q", out, err, in)
	}
	e, err := decodeMsg([]byte("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"))
	if err != nil || e.E.Code != 201 || e.E.Msg != "A Generic Error Ocurred" {
		t.Fatalf("error message: %+v, %v", e.E, err)
	}
}

func TestKRPCMalformed(t *testing.T) {
	bad := []string{
		"",
		"d",
		"de",
		"le",
		"i42e",
		"d1:t2:aa1:y1:qe",                      // query without method
		"d1:t2:aa1:y1:re",                      // response without r
		"d1:t2:aa1:y1:ee",                      // error without e
		"d1:t0:1:y1:q1:q4:pinge",               // empty transaction id
		"d1:t2:aa1:y1:xe",                      // unknown type
		"d1:eli201ee1:t2:aa1:y1:ee",            // error list too short
		"d1:eli201ei5ee1:t2:aa1:y1:ee",         // error message not a string
		"d1:el3:abc3:abce1:t2:aa1:y1:ee",       // error code not an int
		"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", // id of the wrong type
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping",                 // truncated
		"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qexx", // trailing bytes
		"d1:t99999999999:aa1:y1:qe",
		strings.Repeat("l", 10000) + strings.Repeat("e", 10000),
		"d1:rd2:id20:abcdefghij01234567895:valuesli5eee1:t2:aa1:y1:re",
	}
	for _, b := range bad {
		if m, err := decodeMsg([]byte(b)); err == nil {
			t.Errorf("decode %.60q: no error, got %+v", b, m)
		}
	}
}

func TestCompactNodes(t *testing.T) {
	nodes := []nodeInfo{
		{id: nodeID{1}, addr: netip.MustParseAddrPort("127.0.0.1:6881")},
		{id: nodeID{2}, addr: netip.MustParseAddrPort("[::1]:6882")},
		{id: nodeID{3}, addr: netip.MustParseAddrPort("10.1.2.3:1")},
	}
	b4 := appendNodes(nil, nodes, false)
	b6 := appendNodes(nil, nodes, true)
	if len(b4) != 2*compactNode4 || len(b6) != compactNode6 {
		t.Fatalf("sizes %d %d", len(b4), len(b6))
	}
	got4, err := parseNodes(string(b4), false, 16)
	if err != nil || !reflect.DeepEqual(got4, []nodeInfo{nodes[0], nodes[2]}) {
		t.Fatalf("v4: %v %v", got4, err)
	}
	got6, err := parseNodes(string(b6), true, 16)
	if err != nil || !reflect.DeepEqual(got6, []nodeInfo{nodes[1]}) {
		t.Fatalf("v6: %v %v", got6, err)
	}
	if got, _ := parseNodes(string(b4), false, 1); len(got) != 1 {
		t.Fatalf("cap: %d nodes", len(got))
	}
	if _, err := parseNodes(string(b4[:30]), false, 16); err == nil {
		t.Fatal("30 bytes of nodes: no error")
	}
}

func TestCompactPeers(t *testing.T) {
	for _, s := range []string{"1.2.3.4:5", "[2001:db8::1]:65535"} {
		ap := netip.MustParseAddrPort(s)
		got, err := parseCompactAddr(string(appendCompactAddr(nil, ap)))
		if err != nil || got != ap {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	vals := []string{"\x01\x02\x03\x04\x00\x05", "short", "\x00\x00\x00\x00\x00\x05", "\x01\x02\x03\x04\x00\x00", "\x05\x06\x07\x08\x00\x09"}
	got := parseValues(vals, 100)
	want := []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("5.6.7.8:9")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("values: %v", got)
	}
	if got := parseValues(vals, 1); len(got) != 1 {
		t.Fatalf("cap: %v", got)
	}
}

func FuzzDecodeMsg(f *testing.F) {
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"))
	f.Add([]byte("d1:rd2:id20:abcdefghij01234567895:nodes26:abcdefghij0123456789abcdef5:token2:xx6:valuesl6:abcdefee1:t2:aa1:y1:re"))
	f.Add([]byte("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"))
	f.Add([]byte("lllleeee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMsg(b)
		if err != nil {
			return
		}
		out, err := encodeMsg(&m)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		m2, err := decodeMsg(out)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("second round %q: %+v, %v", out, m2, err)
		}
	})
}

func FuzzParseNodes(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 26)), false)
	f.Add([]byte(strings.Repeat("b", 38)), true)
	f.Add([]byte("short"), false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		nodes, err := parseNodes(string(b), v6, 16)
		if err != nil {
			return
		}
		size := compactNode4
		if v6 {
			size = compactNode6
		}
		// Past 16 nodes parseNodes stops: only inputs it read whole can round trip.
		if len(b) <= 16*size && !bytes.Equal(appendNodes(nil, nodes, v6), b) && allFamily(nodes, v6) {
			t.Fatalf("nodes %x did not round trip", b)
		}
	})
}

// allFamily says whether every node parsed is of the family (v4-mapped v6 entries are not).
func allFamily(nodes []nodeInfo, v6 bool) bool {
	for _, n := range nodes {
		if n.addr.Addr().Is4() == v6 {
			return false
		}
	}
	return true
}

func FuzzParseCompactAddr(f *testing.F) {
	f.Add([]byte("\x7f\x00\x00\x01\x1a\xe1"))
	f.Add([]byte(strings.Repeat("\x01", 18)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, err := parseCompactAddr(string(b))
		if err != nil {
			return
		}
		if got := appendCompactAddr(nil, ap); len(got) != len(b) && ap.Addr().Is6() {
			t.Fatalf("%x -> %v -> %x", b, ap, got)
		}
		parseValues([]string{string(b)}, 1)
	})
}
