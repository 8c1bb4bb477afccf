package wire

import (
	"net/netip"
	"slices"
	"testing"
)

func TestAllowedFastSetBEP6(t *testing.T) {
	// The example vectors published in BEP 6.
	var ih [20]byte
	for i := range ih {
		ih[i] = 0xaa
	}
	ip := netip.MustParseAddr("80.4.4.200")
	tests := []struct {
		k    int
		want []uint32
	}{
		{7, []uint32{1059, 431, 808, 1217, 287, 376, 1188}},
		{9, []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}},
	}
	for _, tt := range tests {
		if got := AllowedFastSet(tt.k, 1313, ip, ih); !slices.Equal(got, tt.want) {
			t.Errorf("k=%d: %v, want %v", tt.k, got, tt.want)
		}
		// Same /24, and the IPv4-mapped form, give the same set.
		for _, other := range []string{"80.4.4.1", "::ffff:80.4.4.200"} {
			if got := AllowedFastSet(tt.k, 1313, netip.MustParseAddr(other), ih); !slices.Equal(got, tt.want) {
				t.Errorf("k=%d from %s: %v, want %v", tt.k, other, got, tt.want)
			}
		}
	}
	if got := AllowedFastSet(7, 1313, netip.MustParseAddr("80.4.5.200"), ih); slices.Equal(got, tests[0].want) {
		t.Errorf("another /24 got the same set")
	}
}

func TestAllowedFastSetEdges(t *testing.T) {
	ih := [20]byte{1}
	v4 := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name      string
		k, pieces int
		ip        netip.Addr
		wantLen   int
	}{
		{"k larger than the torrent", 10, 3, v4, 3},
		{"one piece", 10, 1, v4, 1},
		{"no pieces", 10, 0, v4, 0},
		{"k zero", 0, 100, v4, 0},
		{"k negative", -1, 100, v4, 0},
		{"invalid ip", 5, 100, netip.Addr{}, 0},
		{"ipv6", 10, 1000, netip.MustParseAddr("2001:db8:1:2::1"), 10},
		{"big k uses the bitmap", 1000, 1000, v4, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AllowedFastSet(tt.k, tt.pieces, tt.ip, ih)
			if len(got) != tt.wantLen {
				t.Fatalf("%d pieces, want %d: %v", len(got), tt.wantLen, got)
			}
			seen := map[uint32]bool{}
			for _, p := range got {
				if int(p) >= tt.pieces || seen[p] {
					t.Fatalf("bad or repeated piece %d in %v", p, got)
				}
				seen[p] = true
			}
		})
	}
	// IPv6 peers in one /48 share a set; another /48 gets another.
	a := AllowedFastSet(10, 100000, netip.MustParseAddr("2001:db8:1:2::1"), ih)
	b := AllowedFastSet(10, 100000, netip.MustParseAddr("2001:db8:1:ffff::9"), ih)
	c := AllowedFastSet(10, 100000, netip.MustParseAddr("2001:db8:2::1"), ih)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatalf("ipv6 /48 keying: %v %v %v", a, b, c)
	}
	// The set is a prefix-stable sequence: a bigger k extends a smaller one.
	if small, big := AllowedFastSet(5, 500, v4, ih), AllowedFastSet(50, 500, v4, ih); !slices.Equal(small, big[:5]) {
		t.Fatalf("k=5 %v is not a prefix of k=50 %v", small, big)
	}
}
