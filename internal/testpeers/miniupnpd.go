package testpeers

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testutil"
)

// RouterWAN is a Router's outside address: miniupnpd refuses to map behind a private or
// documentation address, and nothing lies past this one (the jail has no route out).
const RouterWAN = "11.22.33.44"

// Router is miniupnpd (UPnP IGD and NAT-PMP) running in a test host, the default gateway of
// the client hosts given to NewRouter.
type Router struct {
	Host     *netns.Host
	RootDesc string // its device description URL, for upnpc -u

	client *netns.Host
}

// NewRouter starts miniupnpd in host router, with an outside veth at RouterWAN, mapping
// for hosts of client's /24, and makes router the default gateway of client. It uses
// miniupnpd's nftables backend with tables it makes itself.
func NewRouter(t testing.TB, router, client *netns.Host) *Router {
	t.Helper()
	testutil.Need(t, "miniupnpd", "upnpc", "nft", "nsenter")
	r := &Router{Host: router, client: client, RootDesc: fmt.Sprintf("http://%s:5000/rootDesc.xml", router.IP)}
	client.Run(t, "ip", "route", "replace", "default", "via", router.IP.String())

	// The WAN side: a veth pair whose both ends stay in the router's namespace.
	router.Run(t, "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan1")
	router.Run(t, "ip", "addr", "add", RouterWAN+"/24", "dev", "wan0")
	router.Run(t, "ip", "link", "set", "wan0", "up")
	router.Run(t, "ip", "link", "set", "wan1", "up")

	dir := t.TempDir()
	// The table and chains miniupnpd's nftables backend adds its rules to, by its default
	// names (Debian's init script would make them with iptables).
	rules := `table inet filter {
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
	writeText(t, filepath.Join(dir, "rules.nft"), rules)
	router.Run(t, "nft", "-f", filepath.Join(dir, "rules.nft"))

	subnet := netip.PrefixFrom(client.IP, 24).Masked()
	conf := strings.Join([]string{
		"ext_ifname=wan0",
		"listening_ip=eth0",
		"http_port=5000",
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"secure_mode=yes", // a client maps only to itself
		"system_uptime=yes",
		"uuid=6f1d3c2a-8b4e-4f10-9a7c-2d5e8f90b1c3",
		fmt.Sprintf("allow 1024-65535 %s 1024-65535", subnet),
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
	writeText(t, filepath.Join(dir, "miniupnpd.conf"), conf)
	argv := router.Command("miniupnpd", "-d", "-f", filepath.Join(dir, "miniupnpd.conf"),
		"-P", filepath.Join(dir, "miniupnpd.pid"))
	mu := testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 10*time.Second, "miniupnpd to listen for NAT-PMP", func() bool {
		return mu.Exited() || strings.Contains(mu.Output(), "Listening for NAT-PMP")
	})
	if mu.Exited() {
		t.Fatalf("miniupnpd exited: %v\n%s", mu.Err(), mu.Output())
	}
	return r
}

func writeText(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Mapping is a port mapping on the Router, as `upnpc -l` lists it.
type Mapping struct {
	Proto        string // "TCP" or "UDP"
	External     int
	InternalAddr string
	Internal     int
	Description  string
	Lease        int // seconds left; 0 = permanent
}

var mappingLine = regexp.MustCompile(`^\s*\d+\s+(TCP|UDP)\s+(\d+)->([0-9.]+):(\d+)\s+'([^']*)'\s+'[^']*'\s+(\d+)`)

// Mappings lists the router's mappings, NAT-PMP's included, asking from the client host.
func (r *Router) Mappings(t testing.TB) []Mapping {
	t.Helper()
	out := r.client.Run(t, "upnpc", "-u", r.RootDesc, "-l")
	var ms []Mapping
	for _, line := range strings.Split(out, "\n") {
		m := mappingLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ext, _ := strconv.Atoi(m[2])
		in, _ := strconv.Atoi(m[4])
		lease, _ := strconv.Atoi(m[6])
		ms = append(ms, Mapping{Proto: m[1], External: ext, InternalAddr: m[3], Internal: in, Description: m[5], Lease: lease})
	}
	return ms
}
