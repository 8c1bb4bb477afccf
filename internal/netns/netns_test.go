package netns

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"torrentfs/internal/testutil"
)

// The test binary doubles as the program run in a host: with NETNS_HELPER set it does one
// network chore there (see helper) instead of running tests.
func TestMain(m *testing.M) {
	if os.Getenv("NETNS_HELPER") != "" {
		if err := helper(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// greetOne listens on addr with lc, says "ready", accepts one connection and greets it.
func greetOne(lc net.ListenConfig, addr string) error {
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = fmt.Fprintf(c, "hello from %s\n", c.LocalAddr())
	return err
}

func helper(args []string) error {
	switch args[0] {
	case "listen": // listen ADDR: accept one connection and greet it
		return greetOne(net.ListenConfig{}, args[1])
	case "listen-bound": // listen-bound ADDR: like listen, the socket bound to eth0 as libtorrent binds its own
		return greetOne(net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0") })
			if err != nil {
				return err
			}
			return serr
		}}, args[1])
	case "dial": // dial ADDR: print the greeting
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			return err
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		return err
	case "mrecv": // mrecv GROUP: print the first datagram sent to the group on eth0
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addr, err := net.ResolveUDPAddr("udp4", args[1])
		if err != nil {
			return err
		}
		c, err := net.ListenMulticastUDP("udp4", ifi, addr)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		buf := make([]byte, 1500)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return err
		}
		fmt.Printf("got %q from %s\n", buf[:n], from.IP)
		return nil
	case "msend": // msend GROUP MSG: send MSG to the group until killed
		c, err := net.Dial("udp4", args[1])
		if err != nil {
			return err
		}
		for {
			if _, err := c.Write([]byte(args[2])); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// startHelper runs the test binary as a helper in host h.
func startHelper(t *testing.T, h *Host, args ...string) *testutil.Proc {
	t.Helper()
	argv := append([]string{"env", "NETNS_HELPER=1", os.Args[0]}, args...)
	argv = h.Command(argv[0], argv[1:]...)
	return testutil.Start(t, argv[0], argv[1:]...)
}

// listen starts a listening helper (kind "listen" or "listen-bound") in host h and waits
// until it listens on addr.
func listen(t *testing.T, h *Host, kind, addr string) {
	t.Helper()
	l := startHelper(t, h, kind, addr)
	testutil.WaitFor(t, 10*time.Second, "the listener in "+h.Name, func() bool { return strings.Contains(l.Stdout(), "ready") })
}

func needRoot(t *testing.T) {
	t.Helper()
	testutil.Need(t, "ip")
	if os.Geteuid() != 0 {
		t.Skip("needs root (run under bin/netjail)")
	}
}

func TestHostsReachEachOtherAndTheBridge(t *testing.T) {
	needRoot(t)
	t.Parallel()
	nt := New(t, 2)
	a, b := nt.Hosts[0], nt.Hosts[1]
	if a.IP == b.IP || a.IP == nt.BridgeIP {
		t.Fatalf("addresses collide: bridge %s, hosts %s %s", nt.BridgeIP, a.IP, b.IP)
	}

	// Test process -> host a.
	listen(t, a, "listen", a.IP.String()+":7000")
	c, err := net.Dial("tcp", a.IP.String()+":7000")
	if err != nil {
		t.Fatalf("dial host a from the test's namespace: %v", err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if want := "hello from " + a.IP.String() + ":7000\n"; line != want {
		t.Errorf("host a greeted %q, want %q", line, want)
	}

	// Host b -> host a, across the bridge.
	listen(t, a, "listen", a.IP.String()+":7001")
	if got := b.Run(t, "env", "NETNS_HELPER=1", os.Args[0], "dial", a.IP.String()+":7001"); !strings.Contains(got, "hello from "+a.IP.String()) {
		t.Errorf("host b got %q from host a", got)
	}

	// Host b -> the bridge's address, in the test's namespace.
	ln, err := net.Listen("tcp", nt.BridgeIP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			fmt.Fprintf(c, "hello from the bridge\n")
			c.Close()
		}
	}()
	if got := b.Run(t, "env", "NETNS_HELPER=1", os.Args[0], "dial", ln.Addr().String()); got != "hello from the bridge\n" {
		t.Errorf("host b got %q from the bridge", got)
	}
}

func TestMulticastCrossesTheBridge(t *testing.T) {
	needRoot(t)
	t.Parallel()
	nt := New(t, 2)
	a, b := nt.Hosts[0], nt.Hosts[1]
	const group = "239.192.152.143:6771"
	r := startHelper(t, b, "mrecv", group)
	testutil.WaitFor(t, 10*time.Second, "receiver in host b", func() bool { return strings.Contains(r.Stdout(), "ready") })
	startHelper(t, a, "msend", group, "ping")
	if err := r.Wait(t, 20*time.Second); err != nil {
		t.Fatalf("receiver: %v\n%s", err, r.Output())
	}
	if want := fmt.Sprintf("got %q from %s", "ping", a.IP); !strings.Contains(r.Stdout(), want) {
		t.Errorf("receiver printed %q, want %q", r.Stdout(), want)
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	needRoot(t)
	var nt *Net
	t.Run("make", func(t *testing.T) {
		nt = New(t, 3)
		nt.Shape(t, nt.Hosts[0], 1<<20)
	})
	netns, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, netns)
	}
	links, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v: %s", err, links)
	}
	for _, h := range nt.Hosts {
		if strings.Contains(string(netns), h.Name+" ") || strings.HasSuffix(strings.TrimSpace(string(netns)), h.Name) {
			t.Errorf("namespace %s is left:\n%s", h.Name, netns)
		}
		if strings.Contains(string(links), " "+h.Veth+"@") || strings.Contains(string(links), " "+h.Veth+":") {
			t.Errorf("veth %s is left:\n%s", h.Veth, links)
		}
	}
	if strings.Contains(string(links), " "+nt.Bridge+":") {
		t.Errorf("bridge %s is left:\n%s", nt.Bridge, links)
	}
}

func TestNetsDoNotCollide(t *testing.T) {
	needRoot(t)
	t.Parallel()
	a, b := New(t, 1), New(t, 1)
	if a.Bridge == b.Bridge || a.BridgeIP == b.BridgeIP || a.Hosts[0].Name == b.Hosts[0].Name || a.Hosts[0].Veth == b.Hosts[0].Veth {
		t.Errorf("two nets share a name or subnet: %+v %+v", a, b)
	}
}

// A delayed host's packets take at least its delay: the round trip from the test to a
// host delayed by 40 ms is never shorter (nothing here asserts an upper bound tighter
// than a sanity check: the machine may be busy), and traffic still flows both ways.
func TestDelayLine(t *testing.T) {
	needRoot(t)
	nt := New(t, 2)
	a, b := nt.Hosts[0], nt.Hosts[1]
	const d = 40 * time.Millisecond
	nt.Delay(t, a, d)
	nt.Delay(t, b, d)
	listen(t, b, "listen", b.IP.String()+":7000")
	start := time.Now()
	if got := a.Run(t, "env", "NETNS_HELPER=1", os.Args[0], "dial", b.IP.String()+":7000"); !strings.Contains(got, "hello from "+b.IP.String()) {
		t.Fatalf("through two delay lines: %q", got)
	}
	// A TCP connect and one line back: at least two round trips of 80 ms.
	el := time.Since(start)
	t.Logf("connect and greeting through two %v delay lines: %v (process start included)", d, el)
	if el < 4*d || el > 30*time.Second {
		t.Errorf("connect and greeting took %v; with %v each way it takes at least %v", el, d, 4*d)
	}
	// From the test's own namespace (the bridge): the host's replies are delayed.
	start = time.Now()
	c, err := net.DialTimeout("tcp", a.IP.String()+":1", 5*time.Second) // refused, after one round trip
	if err == nil {
		c.Close()
	}
	el = time.Since(start)
	t.Logf("refused connect from the bridge: %v", el)
	if el < d {
		t.Errorf("a refused connect took %v, less than the host's delay %v", el, d)
	}
}

// A socket bound to eth0 (SO_BINDTODEVICE, as libtorrent binds its own) sends past the
// host's routes; its packets are delayed all the same, and the delayed host still reaches
// an undelayed one and the bridge.
func TestDelayLineBoundSocket(t *testing.T) {
	needRoot(t)
	nt := New(t, 2)
	a, b := nt.Hosts[0], nt.Hosts[1]
	const d = 100 * time.Millisecond
	nt.Delay(t, b, d)
	listen(t, b, "listen-bound", b.IP.String()+":7000")
	// From the bridge: the SYN-ACK and then the greeting come from b, each delayed.
	start := time.Now()
	c, err := net.DialTimeout("tcp", b.IP.String()+":7000", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	el := time.Since(start)
	if err != nil || !strings.Contains(line, "hello from "+b.IP.String()) {
		t.Fatalf("greeting %q, %v", line, err)
	}
	t.Logf("connect and greeting from a bound socket behind a %v delay line: %v", d, el)
	if el < 2*d {
		t.Errorf("connect and greeting took %v; with %v on b's sends they take at least %v", el, d, 2*d)
	}
	// b dials the undelayed host a: a connect is one delayed SYN, one undelayed SYN-ACK.
	listen(t, a, "listen", a.IP.String()+":7001")
	if got := b.Run(t, "env", "NETNS_HELPER=1", os.Args[0], "dial", a.IP.String()+":7001"); !strings.Contains(got, "hello from "+a.IP.String()) {
		t.Fatalf("from the delayed host to an undelayed one: %q", got)
	}
}
