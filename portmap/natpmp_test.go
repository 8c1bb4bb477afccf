package portmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mapReply(op byte, result uint16, internal, mapped uint16, life uint32) []byte {
	b := make([]byte, 16)
	b[1] = op
	binary.BigEndian.PutUint16(b[2:], result)
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint16(b[8:], internal)
	binary.BigEndian.PutUint16(b[10:], mapped)
	binary.BigEndian.PutUint32(b[12:], life)
	return b
}

func TestParseNATPMP(t *testing.T) {
	ext := []byte{0, 128, 0, 0, 0, 0, 3, 232, 11, 22, 33, 44}
	for _, tc := range []struct {
		name string
		in   []byte
		want natpmpReply
		err  bool
	}{
		{name: "external", in: ext, want: natpmpReply{op: 128, epoch: 1000, external: netip.MustParseAddr("11.22.33.44")}},
		{name: "map tcp", in: mapReply(130, 0, 6881, 7000, 3600), want: natpmpReply{op: 130, epoch: 1000, internal: 6881, mapped: 7000, lifetime: 3600}},
		{name: "map udp", in: mapReply(129, 0, 6881, 6881, 60), want: natpmpReply{op: 129, epoch: 1000, internal: 6881, mapped: 6881, lifetime: 60}},
		{name: "error, header only", in: []byte{0, 130, 0, 2, 0, 0, 0, 5}, want: natpmpReply{op: 130, result: 2, epoch: 5}},
		{name: "empty", in: nil, err: true},
		{name: "short header", in: []byte{0, 128, 0, 0, 0}, err: true},
		{name: "external cut short", in: ext[:11], err: true},
		{name: "map cut short", in: mapReply(130, 0, 1, 2, 3)[:15], err: true},
		{name: "version 1", in: append([]byte{1}, ext[1:]...), err: true},
		{name: "a request, not a reply", in: []byte{0, 2, 0, 0, 0x1a, 0xe1, 0x1a, 0xe1, 0, 0, 0x0e, 0x10}, err: true},
		{name: "unknown reply opcode", in: mapReply(131, 0, 1, 2, 3), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNATPMP(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseNATPMP: any datagram from the gateway's port parses or is refused, without
// panicking, and what parses is a reply that holds together.
func FuzzParseNATPMP(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 3, 232, 11, 22, 33, 44})
	f.Add(mapReply(130, 0, 6881, 6881, 3600))
	f.Add(mapReply(129, 3, 0, 0, 0)[:8])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseNATPMP(b)
		if err != nil {
			return
		}
		if len(b) < 8 || b[0] != 0 || r.op < opReply {
			t.Fatalf("accepted %x as %+v", b, r)
		}
		if r.result == 0 && r.op == opReply+opExternal && !r.external.Is4() {
			t.Fatalf("external address %v from %x", r.external, b)
		}
		if r.result != 0 && (r.external.IsValid() || r.mapped != 0 || r.lifetime != 0) {
			t.Fatalf("an error reply %x carries fields: %+v", b, r)
		}
	})
}

// fakeGateway answers each NAT-PMP request on 127.0.0.1 with what reply returns for it
// (nil: no answer), as many datagrams as it returns, until the test ends.
func fakeGateway(t *testing.T, reply func(req []byte) [][]byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, d := range reply(bytes.Clone(buf[:n])) {
				pc.WriteToUDPAddrPort(d, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestNATPMPSkipsMalformedReplies(t *testing.T) {
	gw := fakeGateway(t, func(req []byte) [][]byte {
		if len(req) != 12 || req[1] != opMapTCP {
			return nil
		}
		internal := binary.BigEndian.Uint16(req[4:])
		return [][]byte{
			{0xde, 0xad}, // garbage
			mapReply(130, 0, internal, 7000, 60)[:13], // cut short
			mapReply(129, 0, internal, 7001, 60),      // the wrong protocol
			mapReply(130, 0, internal+1, 7002, 60),    // another port of ours
			mapReply(130, 0, internal, 7003, 60),      // the answer
		}
	})
	c := &natpmpClient{gw: gw}
	ext, life, err := c.add(context.Background(), "tcp", 6881, 6881, time.Hour)
	if err != nil || ext != 7003 || life != time.Minute {
		t.Fatalf("add = %d, %v, %v; want 7003, 1m0s, nil", ext, life, err)
	}
}

func TestNATPMPResultCode(t *testing.T) {
	gw := fakeGateway(t, func(req []byte) [][]byte {
		return [][]byte{{0, opReply + req[1], 0, 2, 0, 0, 0, 9}}
	})
	c := &natpmpClient{gw: gw}
	_, _, err := c.add(context.Background(), "udp", 6881, 6881, time.Hour)
	var rc natpmpResult
	if !errors.As(err, &rc) || rc != 2 {
		t.Fatalf("add: %v; want result code 2 (not authorized)", err)
	}
}

func TestNATPMPSilentGateway(t *testing.T) {
	gw := fakeGateway(t, func([]byte) [][]byte { return nil })
	c := &natpmpClient{gw: gw}
	_, err := c.externalAddr(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no NAT-PMP reply") {
		t.Fatalf("externalAddr: %v; want no reply", err)
	}
}

func TestNATPMPNobodyListening(t *testing.T) {
	// A port just freed: the kernel answers with "port unreachable".
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	gw := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	c := &natpmpClient{gw: gw}
	if _, err := c.externalAddr(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing serves NAT-PMP") {
		t.Fatalf("externalAddr: %v; want nothing serves", err)
	}
}

func TestNATPMPCancelled(t *testing.T) {
	gw := fakeGateway(t, func([]byte) [][]byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &natpmpClient{gw: gw}
	if _, err := c.externalAddr(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("externalAddr: %v; want context.Canceled", err)
	}
}

// TestStartSilentGateway: a gateway that never answers NAT-PMP costs one timeout and an
// ErrNotFound, nothing more.
func TestStartSilentGateway(t *testing.T) {
	gw := fakeGateway(t, func([]byte) [][]byte { return nil })
	_, err := Start(context.Background(), Config{TCPPort: 6881, Gateway: gw.Addr(), Method: NATPMP, natpmpPort: gw.Port()})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start: %v; want ErrNotFound", err)
	}
}

func TestDefaultGateway(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	// 10.100.0.1 as the kernel prints it: a number in the host's byte order.
	hex := fmt.Sprintf("%08X", binary.NativeEndian.Uint32([]byte{10, 100, 0, 1}))
	withDefault := write("with", header+
		"eth0\t0064000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"+
		"eth0\t00000000\t"+hex+"\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
	if got, err := defaultGateway(withDefault); err != nil || got != netip.MustParseAddr("10.100.0.1") {
		t.Errorf("defaultGateway = %v, %v; want 10.100.0.1", got, err)
	}
	onlyLAN := write("lan", header+"eth0\t0064000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
	if _, err := defaultGateway(onlyLAN); !errors.Is(err, ErrNoGateway) {
		t.Errorf("defaultGateway without a default route: %v; want ErrNoGateway", err)
	}
}
