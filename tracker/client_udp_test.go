package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// udpFake is a scripted BEP 15 tracker on a loopback socket. handle sees each request and
// returns the packets to answer with (none: the request is "lost").
type udpFake struct {
	conn     net.PacketConn
	mu       sync.Mutex
	requests []udpFakeReq // every packet received, in order
	handle   func(f *udpFake, r udpFakeReq) [][]byte
	done     chan struct{}
}

type udpFakeReq struct {
	connID uint64
	action uint32
	tid    uint32
	body   []byte
	n      int // index in requests
}

func newUDPFake(t *testing.T, network, addr string, handle func(f *udpFake, r udpFakeReq) [][]byte) *udpFake {
	t.Helper()
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	f := &udpFake{conn: conn, handle: handle, done: make(chan struct{})}
	go f.serve()
	t.Cleanup(func() {
		conn.Close()
		<-f.done
	})
	return f
}

func (f *udpFake) url() string { return "udp://" + f.conn.LocalAddr().String() + "/announce" }

func (f *udpFake) serve() {
	defer close(f.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 16 {
			continue
		}
		b := buf[:n]
		r := udpFakeReq{
			connID: binary.BigEndian.Uint64(b),
			action: binary.BigEndian.Uint32(b[8:]),
			tid:    binary.BigEndian.Uint32(b[12:]),
			body:   append([]byte(nil), b[16:]...),
		}
		f.mu.Lock()
		r.n = len(f.requests)
		f.requests = append(f.requests, r)
		f.mu.Unlock()
		for _, out := range f.handle(f, r) {
			f.conn.WriteTo(out, from)
		}
	}
}

func (f *udpFake) actions() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for _, r := range f.requests {
		out = append(out, r.action)
	}
	return out
}

const udpFakeConnID = 0x1122334455667788

func udpHeader(action, tid uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, action)
	binary.BigEndian.PutUint32(b[4:], tid)
	return b
}

func udpConnectReply(tid uint32, connID uint64) []byte {
	return binary.BigEndian.AppendUint64(udpHeader(udpActionConnect, tid), connID)
}

func udpAnnounceReply(tid uint32, interval, leechers, seeders uint32, peers ...netip.AddrPort) []byte {
	b := udpHeader(udpActionAnnounce, tid)
	b = binary.BigEndian.AppendUint32(b, interval)
	b = binary.BigEndian.AppendUint32(b, leechers)
	b = binary.BigEndian.AppendUint32(b, seeders)
	for _, p := range peers {
		b = append(b, p.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, p.Port())
	}
	return b
}

// udpFakeStandard answers connect and announce properly, with the given peers.
func udpFakeStandard(peers ...netip.AddrPort) func(f *udpFake, r udpFakeReq) [][]byte {
	return func(f *udpFake, r udpFakeReq) [][]byte {
		switch r.action {
		case udpActionConnect:
			if r.connID != udpProtocolID {
				return nil
			}
			return [][]byte{udpConnectReply(r.tid, udpFakeConnID)}
		case udpActionAnnounce:
			if r.connID != udpFakeConnID {
				return [][]byte{append(udpHeader(udpActionError, r.tid), "bad connection id"...)}
			}
			return [][]byte{udpAnnounceReply(r.tid, 1800, 2, 3, peers...)}
		}
		return nil
	}
}

func newTestUDPClient(t *testing.T, rawURL string) *UDPClient {
	t.Helper()
	c, err := NewClient(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	uc := c.(*UDPClient)
	uc.BaseTimeout = 50 * time.Millisecond
	return uc
}

func TestUDPAnnounce(t *testing.T) {
	peer := netip.MustParseAddrPort("10.9.8.7:6881")
	f := newUDPFake(t, "udp4", "127.0.0.1:0", udpFakeStandard(peer))
	c := newTestUDPClient(t, f.url())
	req := AnnounceRequest{
		InfoHash: clientTestHash(1), PeerID: clientTestHash(100), Port: 51413,
		Downloaded: 1, Left: 2, Uploaded: 3, Event: EventStopped, NumWant: 7, Key: 0xcafe,
	}
	resp, err := c.Announce(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &AnnounceResponse{Interval: 1800 * time.Second, Incomplete: 2, Complete: 3, Peers: []Peer{{Addr: peer}}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("got %+v, want %+v", resp, want)
	}
	f.mu.Lock()
	ann := f.requests[1]
	f.mu.Unlock()
	if ann.action != udpActionAnnounce || len(ann.body) != 82 {
		t.Fatalf("announce packet: action %d, %d bytes after header", ann.action, len(ann.body))
	}
	b := ann.body
	if [20]byte(b[0:20]) != req.InfoHash || [20]byte(b[20:40]) != req.PeerID {
		t.Error("info hash or peer id garbled")
	}
	fields := []struct {
		name      string
		got, want uint64
	}{
		{"downloaded", binary.BigEndian.Uint64(b[40:]), 1},
		{"left", binary.BigEndian.Uint64(b[48:]), 2},
		{"uploaded", binary.BigEndian.Uint64(b[56:]), 3},
		{"event", uint64(binary.BigEndian.Uint32(b[64:])), 3},
		{"ip", uint64(binary.BigEndian.Uint32(b[68:])), 0},
		{"key", uint64(binary.BigEndian.Uint32(b[72:])), 0xcafe},
		{"num_want", uint64(binary.BigEndian.Uint32(b[76:])), 7},
		{"port", uint64(binary.BigEndian.Uint16(b[80:])), 51413},
	}
	for _, fl := range fields {
		if fl.got != fl.want {
			t.Errorf("%s = %d, want %d", fl.name, fl.got, fl.want)
		}
	}
}

func TestUDPRetransmitOnLoss(t *testing.T) {
	// The fake drops the first connect and the first announce.
	var seen [4]atomic.Int32
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(f *udpFake, r udpFakeReq) [][]byte {
		if r.action < 4 && seen[r.action].Add(1) == 1 {
			return nil
		}
		return udpFakeStandard()(f, r)
	})
	c := newTestUDPClient(t, f.url())
	if _, err := c.Announce(context.Background(), AnnounceRequest{}); err != nil {
		t.Fatal(err)
	}
	want := []uint32{udpActionConnect, udpActionConnect, udpActionAnnounce, udpActionAnnounce}
	if got := f.actions(); !reflect.DeepEqual(got, want) {
		t.Errorf("packets %v, want %v", got, want)
	}
	// A retransmission keeps its transaction id, so a late answer to the first copy counts.
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests[0].tid != f.requests[1].tid || f.requests[2].tid != f.requests[3].tid {
		t.Error("retransmission changed the transaction id")
	}
}

func TestUDPIgnoresStrayAnswers(t *testing.T) {
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(f *udpFake, r udpFakeReq) [][]byte {
		good := udpFakeStandard(netip.MustParseAddrPort("1.2.3.4:5"))(f, r)
		return append([][]byte{
			{1, 2, 3},                         // too short
			udpConnectReply(r.tid^0xffff, 99), // wrong transaction id
			append(udpHeader(udpActionError, r.tid+1), "not yours"...), // error for someone else
		}, good...)
	})
	c := newTestUDPClient(t, f.url())
	resp, err := c.Announce(context.Background(), AnnounceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 1 {
		t.Errorf("peers %v", resp.Peers)
	}
	if got := f.actions(); len(got) != 2 {
		t.Errorf("stray answers caused retransmissions: %v", got)
	}
}

func TestUDPConnectionIDExpiry(t *testing.T) {
	f := newUDPFake(t, "udp4", "127.0.0.1:0", udpFakeStandard())
	c := newTestUDPClient(t, f.url())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	steps := []struct {
		advance time.Duration
		want    []uint32
	}{
		{0, []uint32{udpActionConnect, udpActionAnnounce}},
		{59 * time.Second, []uint32{udpActionAnnounce}}, // still fresh: reused
		{2 * time.Second, []uint32{udpActionConnect, udpActionAnnounce}},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		before := len(f.actions())
		if _, err := c.Announce(context.Background(), AnnounceRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := f.actions()[before:]; !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: packets %v, want %v", i, got, s.want)
		}
	}
}

func TestUDPErrorAction(t *testing.T) {
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(f *udpFake, r udpFakeReq) [][]byte {
		if r.action == udpActionConnect {
			return udpFakeStandard()(f, r)
		}
		return [][]byte{append(udpHeader(udpActionError, r.tid), "torrent not\x00 registered"...)}
	})
	c := newTestUDPClient(t, f.url())
	_, err := c.Announce(context.Background(), AnnounceRequest{})
	if err == nil || !strings.Contains(err.Error(), `tracker error: torrent not\x00 registered`) {
		t.Fatalf("err = %v", err)
	}
	// After an error the connection id is not trusted: the next request connects again.
	before := len(f.actions())
	c.Announce(context.Background(), AnnounceRequest{})
	if got := f.actions()[before:]; len(got) == 0 || got[0] != udpActionConnect {
		t.Errorf("after an error answer: packets %v, want a connect first", got)
	}
}

func TestUDPGivesUp(t *testing.T) {
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(*udpFake, udpFakeReq) [][]byte { return nil })
	c := newTestUDPClient(t, f.url())
	c.BaseTimeout = 10 * time.Millisecond
	c.MaxRetransmits = 2
	_, err := c.Announce(context.Background(), AnnounceRequest{})
	if !errors.Is(err, ErrUDPNoAnswer) {
		t.Fatalf("err = %v", err)
	}
	if got := len(f.actions()); got != 3 {
		t.Errorf("%d connect attempts, want 3", got)
	}
}

func TestUDPContextCancel(t *testing.T) {
	var n atomic.Int32
	second := make(chan struct{})
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(*udpFake, udpFakeReq) [][]byte {
		if n.Add(1) == 2 {
			close(second)
		}
		return nil
	})
	c := newTestUDPClient(t, f.url())
	c.BaseTimeout = time.Hour // only the context can end these requests
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Announce(ctx, AnnounceRequest{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The client is still usable after a cancelled request, and cancel works mid-wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() {
		<-second
		cancel2()
	}()
	if _, err := c.Announce(ctx2, AnnounceRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("second request: err = %v", err)
	}
}

func TestUDPPortUnreachable(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	c := newTestUDPClient(t, "udp://"+addr)
	c.BaseTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Announce(ctx, AnnounceRequest{})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the refusal", err)
	}
}

func TestUDPIPv6Peers(t *testing.T) {
	p1 := netip.MustParseAddrPort("[2001:db8::1]:6881")
	p2 := netip.MustParseAddrPort("[::ffff:10.0.0.1]:80")
	f := newUDPFake(t, "udp6", "[::1]:0", udpFakeStandard(p1, p2))
	c := newTestUDPClient(t, f.url())
	resp, err := c.Announce(context.Background(), AnnounceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 2 || resp.Peers[0].Addr != p1 || resp.Peers[1].Addr != p2 {
		t.Errorf("peers %v", resp.Peers)
	}
}

func TestUDPScrape(t *testing.T) {
	// 80 hashes take two packets (74 + 6).
	var hashes [][20]byte
	for i := range 80 {
		hashes = append(hashes, clientTestHash(byte(i)))
	}
	f := newUDPFake(t, "udp4", "127.0.0.1:0", func(f *udpFake, r udpFakeReq) [][]byte {
		if r.action != udpActionScrape {
			return udpFakeStandard()(f, r)
		}
		b := udpHeader(udpActionScrape, r.tid)
		for i := 0; i+20 <= len(r.body); i += 20 {
			first := uint32(r.body[i]) // clientTestHash(i) starts with byte i
			b = binary.BigEndian.AppendUint32(b, first)
			b = binary.BigEndian.AppendUint32(b, first*10)
			b = binary.BigEndian.AppendUint32(b, first+1)
		}
		return [][]byte{b}
	})
	c := newTestUDPClient(t, f.url())
	stats, err := c.Scrape(context.Background(), hashes)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 80 {
		t.Fatalf("%d results", len(stats))
	}
	for i, h := range hashes {
		want := ScrapeStats{Complete: i, Downloaded: 10 * i, Incomplete: i + 1}
		if stats[h] != want {
			t.Errorf("hash %d: %+v, want %+v", i, stats[h], want)
		}
	}
	if got := f.actions(); !reflect.DeepEqual(got, []uint32{udpActionConnect, udpActionScrape, udpActionScrape}) {
		t.Errorf("packets %v", got)
	}
}

func TestUDPBadURL(t *testing.T) {
	if _, err := NewClient("udp://tracker.example"); err == nil {
		t.Error("udp URL without port accepted")
	}
}

func TestUDPParsers(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		ipv6    bool
		wantErr bool
		peers   int
	}{
		{"empty", nil, false, true, 0},
		{"header only", make([]byte, 11), false, true, 0},
		{"no peers", make([]byte, 12), false, false, 0},
		{"one v4", make([]byte, 18), false, false, 0}, // port 0 is skipped
		{"partial v4", make([]byte, 17), false, true, 0},
		{"v6 size on v4 socket", make([]byte, 30), false, false, 0},
		{"partial v6", make([]byte, 24), true, true, 0},
	}
	for _, tt := range tests {
		_, err := udpParseAnnounceBody(tt.body, tt.ipv6)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	if _, err := udpParseScrapeBody(make([]byte, 23), 2); err == nil {
		t.Error("short scrape body accepted")
	}
	if _, err := udpParseConnectBody(make([]byte, 7)); err == nil {
		t.Error("short connect body accepted")
	}
}

func FuzzUDPReply(f *testing.F) {
	f.Add(udpConnectReply(7, 42), uint8(0))
	f.Add(udpAnnounceReply(7, 1800, 1, 2, netip.MustParseAddrPort("1.2.3.4:5")), uint8(1))
	f.Add(udpAnnounceReply(7, 1800, 1, 2, netip.MustParseAddrPort("[::1]:5")), uint8(0x11))
	f.Add(append(udpHeader(udpActionScrape, 7), make([]byte, 24)...), uint8(2))
	f.Add(append(udpHeader(udpActionError, 7), "nope"...), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, sel uint8) {
		_, _, body, err := udpParseHeader(b)
		if err != nil {
			return
		}
		switch sel & 3 {
		case 0:
			udpParseConnectBody(body)
		case 1:
			resp, err := udpParseAnnounceBody(body, sel&0x10 != 0)
			if err != nil {
				return
			}
			for _, p := range resp.Peers {
				if !p.Addr.IsValid() || p.Addr.Port() == 0 {
					t.Fatalf("invalid peer %v", p.Addr)
				}
			}
			if resp.Interval < 0 || resp.Complete < 0 || resp.Incomplete < 0 {
				t.Fatalf("negative values in %+v", resp)
			}
		case 2:
			n := int(sel >> 2)
			stats, err := udpParseScrapeBody(body, n)
			if err == nil && len(stats) != n {
				t.Fatalf("%d stats for %d hashes", len(stats), n)
			}
		case 3:
			if msg := udpErrorMessage(body); len(msg) > 4*200 {
				t.Fatalf("error message of %d bytes", len(msg))
			}
		}
	})
}
