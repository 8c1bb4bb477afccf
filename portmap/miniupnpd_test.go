package portmap

// Against a real router: miniupnpd (NAT-PMP and UPnP IGD) in a test host's namespace, with
// our mapper in a second host whose default route points at it. upnpc, run in the client's
// namespace, lists the router's mappings, NAT-PMP's too.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testutil"
)

// routerWAN is the router's outside address: miniupnpd refuses to map behind a private or
// documentation address, and nothing lies past this one (the jail has no route out).
const routerWAN = "11.22.33.44"

const (
	testTCP = 6881
	testUDP = 6882
)

type lab struct {
	router, client *netns.Host
	rootDesc       string // the router's device description URL
}

// newLab starts miniupnpd in one host and makes it the other host's default gateway.
func newLab(t *testing.T) *lab {
	t.Helper()
	testutil.Need(t, "miniupnpd", "upnpc", "nft", "nsenter")
	nt := netns.New(t, 2)
	l := &lab{router: nt.Hosts[0], client: nt.Hosts[1]}
	l.rootDesc = fmt.Sprintf("http://%s:5000/rootDesc.xml", l.router.IP)
	l.client.Run(t, "ip", "route", "replace", "default", "via", l.router.IP.String())

	// The WAN side: a veth pair whose both ends stay in the router's namespace.
	l.router.Run(t, "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan1")
	l.router.Run(t, "ip", "addr", "add", routerWAN+"/24", "dev", "wan0")
	l.router.Run(t, "ip", "link", "set", "wan0", "up")
	l.router.Run(t, "ip", "link", "set", "wan1", "up")

	dir := t.TempDir()
	// The tables and chains miniupnpd's nftables backend adds its rules to, by its default
	// names (Debian's init script would make them with iptables).
	nftRules := `table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`
	writeFile(t, filepath.Join(dir, "rules.nft"), nftRules)
	l.router.Run(t, "nft", "-f", filepath.Join(dir, "rules.nft"))

	subnet := netip.PrefixFrom(l.client.IP, 24).Masked()
	conf := strings.Join([]string{
		"ext_ifname=wan0",
		"listening_ip=eth0",
		"http_port=5000",
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"secure_mode=yes", // a client maps only to itself, as we do
		"system_uptime=yes",
		"uuid=6f1d3c2a-8b4e-4f10-9a7c-2d5e8f90b1c3",
		fmt.Sprintf("allow 1024-65535 %s 1024-65535", subnet),
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
	writeFile(t, filepath.Join(dir, "miniupnpd.conf"), conf)
	argv := l.router.Command("miniupnpd", "-d", "-f", filepath.Join(dir, "miniupnpd.conf"),
		"-P", filepath.Join(dir, "miniupnpd.pid"))
	mu := testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 10*time.Second, "miniupnpd to listen for NAT-PMP", func() bool {
		return mu.Exited() || strings.Contains(mu.Output(), "Listening for NAT-PMP")
	})
	if mu.Exited() {
		t.Fatalf("miniupnpd exited: %v\n%s", mu.Err(), mu.Output())
	}
	return l
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// upnpMapping is a line of `upnpc -l`.
type upnpMapping struct {
	proto        string
	external     int
	internalAddr string
	internal     int
	lease        int
}

var mappingLine = regexp.MustCompile(`^\s*\d+\s+(TCP|UDP)\s+(\d+)->([0-9.]+):(\d+)\s+'[^']*'\s+'[^']*'\s+(\d+)`)

// mappings lists the router's mappings as upnpc sees them from the client.
func (l *lab) mappings(t *testing.T) []upnpMapping {
	t.Helper()
	out := l.client.Run(t, "upnpc", "-u", l.rootDesc, "-l")
	var ms []upnpMapping
	for _, line := range strings.Split(out, "\n") {
		m := mappingLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ext, _ := strconv.Atoi(m[2])
		in, _ := strconv.Atoi(m[4])
		lease, _ := strconv.Atoi(m[5])
		ms = append(ms, upnpMapping{proto: m[1], external: ext, internalAddr: m[3], internal: in, lease: lease})
	}
	return ms
}

// startHelper runs this test binary as a mapping client in the client host.
func (l *lab) startHelper(t *testing.T, method string, lifetime time.Duration) *testutil.Proc {
	t.Helper()
	argv := l.client.Command("env",
		helperEnv+"="+method,
		helperTCP+"="+strconv.Itoa(testTCP),
		helperUDP+"="+strconv.Itoa(testUDP),
		helperLife+"="+lifetime.String(),
		os.Args[0], "-test.run=^$")
	return testutil.Start(t, argv[0], argv[1:]...)
}

func waitLine(t *testing.T, p *testutil.Proc, what string, match func(string) bool) string {
	t.Helper()
	var found string
	testutil.WaitFor(t, 30*time.Second, what, func() bool {
		for _, line := range strings.Split(p.Stdout(), "\n") {
			if match(line) {
				found = line
				return true
			}
		}
		if p.Exited() {
			t.Fatalf("helper exited (%v) before %s:\n%s", p.Err(), what, p.Output())
		}
		return false
	})
	return found
}

func TestMiniupnpdNATPMP(t *testing.T) { testMiniupnpd(t, "natpmp", "NAT-PMP") }
func TestMiniupnpdUPnP(t *testing.T)   { testMiniupnpd(t, "upnp", "UPnP") }

// testMiniupnpd maps a TCP and a UDP port with a short lifetime, sees them on the router,
// waits for renewals past the first lifetime and sees them still there, then closes the
// mapper and sees them gone.
func testMiniupnpd(t *testing.T, method, name string) {
	t.Parallel()
	l := newLab(t)
	h := l.startHelper(t, method, 4*time.Second)

	line := waitLine(t, h, "the mapper to start", func(s string) bool {
		return strings.HasPrefix(s, "mapped ") || strings.HasPrefix(s, "error ")
	})
	want := fmt.Sprintf("mapped %s %s tcp=%d udp=%d", name, routerWAN, testTCP, testUDP)
	if line != want {
		t.Fatalf("helper said %q, want %q", line, want)
	}
	l.checkMapped(t)

	// Two rounds of renewals at half the lifetime take the mappings past their first one.
	waitLine(t, h, "two renewals", func(s string) bool { return strings.HasPrefix(s, "renewals=2 ") })
	l.checkMapped(t)

	if err := syscall.Kill(h.Cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("helper: %v\n%s", err, h.Output())
	}
	if !strings.Contains(h.Stdout(), "closed") {
		t.Fatalf("helper did not close:\n%s", h.Output())
	}
	if ms := l.mappings(t); len(ms) != 0 {
		t.Errorf("mappings left after Close: %+v", ms)
	}
}

func (l *lab) checkMapped(t *testing.T) {
	t.Helper()
	got := map[string]upnpMapping{}
	for _, m := range l.mappings(t) {
		got[m.proto] = m
	}
	for proto, port := range map[string]int{"TCP": testTCP, "UDP": testUDP} {
		m, ok := got[proto]
		switch {
		case !ok:
			t.Errorf("no %s mapping on the router; it has %+v", proto, got)
		case m.internalAddr != l.client.IP.String() || m.internal != port || m.external != port:
			t.Errorf("%s mapping %+v, want %d -> %s:%d", proto, m, port, l.client.IP, port)
		case m.lease == 0:
			t.Errorf("%s mapping %+v is permanent; we asked for a lease", proto, m)
		}
	}
}
