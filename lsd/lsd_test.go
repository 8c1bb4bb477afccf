package lsd

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"torrentfs/internal/netns"
	"torrentfs/internal/testutil"
)

// The test binary doubles as the LSD peer run in a test host: with LSD_HELPER set it runs
// a Service there (see helper) instead of running tests.
func TestMain(m *testing.M) {
	if os.Getenv("LSD_HELPER") != "" {
		if err := helper(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Every Service a test made is closed, its goroutines gone.
	goleak.VerifyTestMain(m)
}

// helper IFACE INFOHASH PORT GOFILE: open a Service on IFACE, print "ready", wait for
// GOFILE to exist, then FindPeers(INFOHASH, PORT), printing "found ADDR" per peer, until
// killed.
func helper(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("helper: want IFACE INFOHASH PORT GOFILE, got %q", args)
	}
	var ih [20]byte
	if _, err := hex.Decode(ih[:], []byte(args[1])); err != nil {
		return err
	}
	port, err := strconv.ParseUint(args[2], 10, 16)
	if err != nil {
		return err
	}
	s, err := New(Config{Port: uint16(port), Interfaces: []string{args[0]}})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready")
	for {
		if _, err := os.Stat(args[3]); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.FindPeers(context.Background(), ih, 0, func(peers []netip.AddrPort) {
		for _, p := range peers {
			fmt.Println("found", p)
		}
	})
	return nil
}

func needRoot(t *testing.T) {
	t.Helper()
	testutil.Need(t, "ip")
	if os.Geteuid() != 0 {
		t.Skip("needs root (run under bin/netjail)")
	}
}

// peerLog collects what a FindPeers callback reports.
type peerLog struct {
	mu    sync.Mutex
	peers []netip.AddrPort
}

func (l *peerLog) add(ps []netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peers = append(l.peers, ps...)
}

func (l *peerLog) count(p netip.AddrPort) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, q := range l.peers {
		if q == p {
			n++
		}
	}
	return n
}

// startHelpers starts an LSD helper in each host, waits until all have their sockets
// open, and lets them announce.
func startHelpers(t *testing.T, nt *netns.Net, ih [20]byte, ports []int) []*testutil.Proc {
	t.Helper()
	goFile := t.TempDir() + "/go"
	var procs []*testutil.Proc
	for i, h := range nt.Hosts {
		argv := h.Command("env", "LSD_HELPER=1", os.Args[0], "eth0", hex.EncodeToString(ih[:]), strconv.Itoa(ports[i]), goFile)
		p := testutil.Start(t, argv[0], argv[1:]...)
		procs = append(procs, p)
		testutil.WaitFor(t, 20*time.Second, "LSD helper in "+h.Name, func() bool {
			if p.Exited() {
				t.Fatalf("helper in %s exited: %v\n%s", h.Name, p.Err(), p.Output())
			}
			return strings.Contains(p.Stdout(), "ready")
		})
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return procs
}

func TestServicesOnALANFindEachOther(t *testing.T) {
	needRoot(t)
	t.Parallel()
	nt := netns.New(t, 2)
	bridge6, v6 := addIPv6(t, nt)
	ih := [20]byte{1, 2, 3, 4, 5}
	other := [20]byte{9}

	// Ours, in the test's namespace on the bridge; open before the helpers announce.
	s, err := New(Config{Port: 7000, Interfaces: []string{nt.Bridge}, Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ours, unrelated peerLog
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// A torrent nobody else has: no peers for it.
	wg.Add(1)
	go func() { defer wg.Done(); s.FindPeers(ctx, other, 0, unrelated.add) }()

	helpers := startHelpers(t, nt, ih, []int{7001, 7002})
	wg.Add(1)
	go func() { defer wg.Done(); s.FindPeers(ctx, ih, 0, ours.add) }()

	a := netip.AddrPortFrom(nt.Hosts[0].IP, 7001)
	b := netip.AddrPortFrom(nt.Hosts[1].IP, 7002)
	me := netip.AddrPortFrom(nt.BridgeIP, 7000)
	// Over IPv6 too, which shows as the hosts' IPv6 addresses.
	a6 := netip.AddrPortFrom(v6[0], 7001)
	b6 := netip.AddrPortFrom(v6[1], 7002)
	testutil.WaitFor(t, 20*time.Second, "our Service to hear both hosts", func() bool {
		return ours.count(a) == 1 && ours.count(b) == 1 && ours.count(a6) == 1 && ours.count(b6) == 1
	})
	me6 := netip.AddrPortFrom(bridge6, 7000)
	want := map[int][]netip.AddrPort{0: {b, me, b6, me6}, 1: {a, me, a6, me6}}
	for i, p := range helpers {
		for _, w := range want[i] {
			testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("host %d to hear %s", i, w), func() bool {
				return strings.Contains(p.Stdout(), "found "+w.String()+"\n")
			})
		}
	}
	for i, p := range helpers {
		if strings.Contains(p.Stdout(), nt.Hosts[i].IP.String()+":") {
			t.Errorf("host %d reported itself:\n%s", i, p.Stdout())
		}
	}

	// The same announce heard again is not reported again.
	s.heard <- heard{from: a.Addr(), msg: message{port: a.Port(), infohashes: [][20]byte{ih}}}
	// A second caller for the torrent learns at once of the peers heard before it began.
	var late peerLog
	ctx2, cancel2 := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); s.FindPeers(ctx2, ih, 0, late.add) }()
	testutil.WaitFor(t, 10*time.Second, "a late FindPeers to get the peers heard before", func() bool {
		return late.count(a) == 1 && late.count(b) == 1
	})
	cancel2()
	if n := ours.count(a); n != 1 {
		t.Errorf("%s reported %d times", a, n)
	}
	unrelated.mu.Lock()
	if len(unrelated.peers) != 0 {
		t.Errorf("peers for a torrent nobody announced: %v", unrelated.peers)
	}
	unrelated.mu.Unlock()
}

// addIPv6 gives the bridge and the hosts IPv6 addresses in a private /64, without
// duplicate address detection (which would leave them unusable for a second or two), and
// returns the bridge's and the hosts'.
func addIPv6(t *testing.T, nt *netns.Net) (netip.Addr, []netip.Addr) {
	t.Helper()
	b := nt.BridgeIP.As4()
	prefix := fmt.Sprintf("fd00:%d:%d::", b[1], b[2])
	ipCmd(t, "addr", "add", prefix+"1/64", "dev", nt.Bridge, "nodad")
	var out []netip.Addr
	for i, h := range nt.Hosts {
		a := netip.MustParseAddr(fmt.Sprintf("%s%x", prefix, 0x10+i))
		ipCmd(t, "-n", h.Name, "addr", "add", a.String()+"/64", "dev", "eth0", "nodad")
		out = append(out, a)
	}
	return netip.MustParseAddr(prefix + "1"), out
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestCloseEndsFindPeers(t *testing.T) {
	needRoot(t)
	t.Parallel()
	nt := netns.New(t, 0)
	s, err := New(Config{Port: 7000, Interfaces: []string{nt.Bridge}, Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		s.FindPeers(context.Background(), [20]byte{1}, 0, func([]netip.AddrPort) {})
		close(done)
	}()
	s.Close()
	<-done
	// After Close, FindPeers returns at once.
	s.FindPeers(context.Background(), [20]byte{1}, 0, func([]netip.AddrPort) {})
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Group4: "10.0.0.1:6771", Interfaces: []string{"lo"}},
		{Group4: "[ff15::efc0:988f]:6771", Interfaces: []string{"lo"}},
		{Group6: "239.192.152.143:6771", Interfaces: []string{"lo"}},
		{Interfaces: []string{"no-such-interface"}},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) worked", cfg)
		}
	}
}
