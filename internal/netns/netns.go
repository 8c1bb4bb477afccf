// Package netns gives a test separate "hosts" on a private LAN: network namespaces, each
// joined by a veth to a bridge in the test's own namespace, with 10.x addresses and
// multicast. Some DHT implementations ignore 127/8 peers and LSD (BEP 14) needs a
// multicast-capable interface, so such tests cannot run on loopback alone.
//
// It is for tests run as root inside bin/netjail: the bridge lives in the jail's namespace,
// which has no route out, so nothing a host sends leaves the jail. A Net owns its bridge,
// veths and namespaces; t.Cleanup removes them, failed test or not. Programs run in a host
// through nsenter (Host.Command); the test process itself stays in the jail's
// namespace and reaches the hosts through the bridge.
//
// Names and subnets are unique across tests that run at once, in this process or in others
// (go test runs packages in parallel in one jail): a Net claims a slot number k by creating
// the bridge named after k, which the kernel lets only one process do, and derives its
// subnet 10.(100+k/256).(k%256).0/24 from k. Namespace names carry the process ID too,
// because /run/netns is shared by every jail on the machine.
//
// Links can be made to look like a WAN: Shape limits a host's send rate (tbf), Delay adds
// a one-way delay to what it sends (a user-space delay line through TUN devices in the
// test's namespace, since the kernel here has no netem; delay.go). The delay lines are
// goroutines of this process, one reader and one writer per host, owning nothing but their
// two devices.
package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// T is what a Net needs from its user: a *testing.T, or a lab tool's own (scripts/bench).
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Net is a bridge in the test's namespace and the hosts attached to it.
type Net struct {
	Bridge   string     // bridge interface in the test's own namespace
	BridgeIP netip.Addr // 10.A.B.1, the hosts' default route
	Hosts    []*Host

	slot int
}

// Host is a network namespace with one veth (named eth0 inside) to the bridge.
type Host struct {
	Name string     // namespace name, under /run/netns
	IP   netip.Addr // 10.A.B.(10+i)
	Veth string     // the veth's end in the test's namespace (on the bridge)
}

// slots is how many bridges may exist at once in one jail; subnets 10.100.0.0 to
// 10.131.255.0.
const slots = 8192

var counter atomic.Uint32

// New creates a bridge with address 10.A.B.1/24 and n hosts on it: host i is a namespace
// with lo up and eth0, a veth to the bridge, at 10.A.B.(10+i)/24, a default route via the
// bridge and a route for 224.0.0.0/4 on eth0. t.Cleanup removes all of it.
func New(t T, n int) *Net {
	t.Helper()
	if n < 0 || n > 200 {
		t.Fatalf("netns.New: %d hosts; at most 200 fit in a /24", n)
	}
	nt := claim(t)
	// Cleanup registered before the hosts are made, so a failure halfway still removes
	// what was made.
	t.Cleanup(func() { nt.remove(t) })
	for i := range n {
		nt.addHost(t, i)
	}
	return nt
}

// claim creates the bridge for a free slot: the kernel refuses a second link of one name,
// so whoever creates "tfsbK" owns slot K and its subnet in this namespace.
func claim(t T) *Net {
	t.Helper()
	start := (os.Getpid()*31 + int(counter.Add(1))*7) % slots
	for try := range slots {
		k := (start + try) % slots
		name := "tfsb" + strconv.Itoa(k)
		out, err := exec.Command("ip", "link", "add", name, "type", "bridge", "mcast_snooping", "0").CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "File exists") {
				continue
			}
			t.Fatalf("create bridge %s: %v: %s", name, err, out)
		}
		nt := &Net{Bridge: name, slot: k, BridgeIP: subnetAddr(k, 1)}
		// Flooding every multicast frame (no snooping) is what a small switch does, and
		// needs no IGMP querier on the LAN.
		ip(t, "addr", "add", nt.BridgeIP.String()+"/24", "dev", name)
		ip(t, "link", "set", name, "up")
		return nt
	}
	t.Fatal("netns: every bridge slot is taken")
	return nil
}

func subnetAddr(slot, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(100 + slot/256), byte(slot % 256), byte(host)})
}

func (nt *Net) addHost(t T, i int) {
	t.Helper()
	h := &Host{
		Name: fmt.Sprintf("tfs-%d-%d-%d", os.Getpid(), nt.slot, i),
		IP:   subnetAddr(nt.slot, 10+i),
		Veth: fmt.Sprintf("tfs%dh%d", nt.slot, i),
	}
	ip(t, "netns", "add", h.Name)
	// Appended before anything else can fail, so the cleanup deletes the namespace.
	nt.Hosts = append(nt.Hosts, h)
	ip(t, "link", "add", h.Veth, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
	ip(t, "link", "set", h.Veth, "master", nt.Bridge)
	ip(t, "link", "set", h.Veth, "up")
	in := func(args ...string) { ip(t, append([]string{"-n", h.Name}, args...)...) }
	in("link", "set", "lo", "up")
	in("addr", "add", h.IP.String()+"/24", "dev", "eth0")
	in("link", "set", "eth0", "up", "multicast", "on")
	in("route", "add", "default", "via", nt.BridgeIP.String())
	in("route", "add", "224.0.0.0/4", "dev", "eth0")
}

// remove deletes the namespaces (which takes their veth ends and so the pairs) and the
// bridge. It reports what it could not delete but goes on.
func (nt *Net) remove(t T) {
	for _, h := range nt.Hosts {
		if out, err := exec.Command("ip", "netns", "del", h.Name).CombinedOutput(); err != nil {
			t.Errorf("delete namespace %s: %v: %s", h.Name, err, out)
		}
		// Normally gone with the namespace; a veth whose peer never made it there is not.
		exec.Command("ip", "link", "del", h.Veth).Run()
	}
	if out, err := exec.Command("ip", "link", "del", nt.Bridge).CombinedOutput(); err != nil {
		t.Errorf("delete bridge %s: %v: %s", nt.Bridge, err, out)
	}
}

// Shape limits what host h sends to rate bytes per second, with a tbf qdisc on the host's
// eth0 (the kernel here has no netem; tbf is what it offers), queueing up to 50 ms of it.
// rate 0 removes the limit.
func (nt *Net) Shape(t T, h *Host, rate int) { nt.ShapeQueue(t, h, rate, 50*time.Millisecond) }

// ShapeQueue is Shape with a queue of the given time at rate: what the link's router
// holds before it drops. The classic rule for router buffers is one bandwidth-delay
// product, so that a TCP sender's losses do not come before its window covers the path.
// A stream through a shaped, delayed link gets 95% of the rate at 20 ms, what TCP/IP
// framing leaves (docs/BENCHMARKS.md, WAN lab).
func (nt *Net) ShapeQueue(t T, h *Host, rate int, queue time.Duration) {
	t.Helper()
	if rate == 0 {
		run(t, h.Command("tc", "qdisc", "del", "dev", "eth0", "root")...)
		return
	}
	// A burst of at least one MTU-sized frame per timer tick, or tbf drops everything.
	burst := max(rate/100, 4096)
	run(t, h.Command("tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
		"rate", strconv.Itoa(rate)+"bps", "burst", strconv.Itoa(burst),
		"latency", strconv.FormatInt(max(queue, time.Millisecond).Milliseconds(), 10)+"ms")...)
}

// Prefix is the argv prefix that runs a program in host h: it enters the host's network
// namespace only. (Not `ip netns exec`, which also gives the program a copy of the mount
// namespace: a copy holds every FUSE mount of the moment, so a test's unmount elsewhere
// would not end its file system while the program runs.)
func (h *Host) Prefix() []string {
	return []string{"nsenter", "--net=/run/netns/" + h.Name, "--"}
}

// Command is the argv that runs name with args in host h.
func (h *Host) Command(name string, args ...string) []string {
	return append(append(h.Prefix(), name), args...)
}

// Run runs name with args in host h to completion and returns its stdout; it fails the
// test if the program fails.
func (h *Host) Run(t T, name string, args ...string) string {
	t.Helper()
	argv := h.Command(name, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s%s", h.Name, strings.Join(argv[len(h.Prefix()):], " "), err, out, stderr.String())
	}
	return string(out)
}

func run(t T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

func ip(t T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
