package swarm

import (
	"fmt"
	"net/netip"
	"testing"

	"torrentfs/swarm/wire"
)

func TestPexDiff(t *testing.T) {
	a := func(n int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}), 6881)
	}
	set := func(ns ...int) map[netip.AddrPort]wire.PexFlags {
		m := map[netip.AddrPort]wire.PexFlags{}
		for _, n := range ns {
			m[a(n)] = wire.PexReachable
		}
		return m
	}
	rng := func(lo, hi int) []int {
		var ns []int
		for n := lo; n < hi; n++ {
			ns = append(ns, n)
		}
		return ns
	}
	for _, tc := range []struct {
		name            string
		sent, connected map[netip.AddrPort]wire.PexFlags
		self            netip.AddrPort
		added, dropped  []int
	}{
		{"nothing", nil, nil, netip.AddrPort{}, nil, nil},
		{"first message", nil, set(1, 2, 3), netip.AddrPort{}, []int{1, 2, 3}, nil},
		{"never the peer itself", nil, set(1, 2, 3), a(2), []int{1, 3}, nil},
		{"no change", set(1, 2), set(1, 2), netip.AddrPort{}, nil, nil},
		{"added and dropped", set(1, 2), set(2, 3), netip.AddrPort{}, []int{3}, []int{1}},
		{"at most 50 each, lowest first", set(rng(0, 60)...), set(rng(100, 160)...), netip.AddrPort{}, rng(100, 150), rng(0, 50)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pexDiff(tc.sent, tc.connected, tc.self)
			var added, dropped []int
			for _, p := range m.Added {
				if p.Flags != wire.PexReachable {
					t.Errorf("%v has flags %#x, want the connected set's", p.Addr, p.Flags)
				}
				b := p.Addr.Addr().As4()
				added = append(added, int(b[2])<<8|int(b[3]))
			}
			for _, d := range m.Dropped {
				b := d.Addr().As4()
				dropped = append(dropped, int(b[2])<<8|int(b[3]))
			}
			if fmt.Sprint(added) != fmt.Sprint(tc.added) || fmt.Sprint(dropped) != fmt.Sprint(tc.dropped) {
				t.Errorf("added %v dropped %v; want %v and %v", added, dropped, tc.added, tc.dropped)
			}
		})
	}
}
