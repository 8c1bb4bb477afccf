package portmap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testutil"
)

// TestStartWithoutDefaultRoute is the jail every other test of the module runs in: only
// loopback, so Start finds no gateway and sends nothing.
func TestStartWithoutDefaultRoute(t *testing.T) {
	if gw, err := defaultGateway(procRoute); err == nil {
		t.Skipf("this namespace has a default route (via %v): run the tests under netjail", gw)
	}
	m, err := Start(context.Background(), Config{TCPPort: 6881, UDPPort: 6881})
	if !errors.Is(err, ErrNoGateway) || m != nil {
		t.Fatalf("Start = %v, %v; want ErrNoGateway", m, err)
	}
}

// TestGatewayThatNeverAnswers: a client behind a gateway that drops NAT-PMP and runs no
// UPnP device gives up after its timeouts with ErrNotFound, trying both ways at once.
func TestGatewayThatNeverAnswers(t *testing.T) {
	t.Parallel()
	testutil.Need(t, "nft", "nsenter")
	nt := netns.New(t, 2)
	l := &lab{router: nt.Hosts[0], client: nt.Hosts[1]}
	l.client.Run(t, "ip", "route", "replace", "default", "via", l.router.IP.String())
	// No "port unreachable" either: the datagrams vanish.
	l.router.Run(t, "nft", "add table inet silent")
	l.router.Run(t, "nft", "add chain inet silent input { type filter hook input priority 0; policy accept; }")
	l.router.Run(t, "nft", "add rule inet silent input udp dport 5351 drop")

	h := l.startHelper(t, "auto", time.Hour)
	line := waitLine(t, h, "the mapper to give up", func(s string) bool {
		return strings.HasPrefix(s, "mapped ") || strings.HasPrefix(s, "error ")
	})
	if !strings.Contains(line, ErrNotFound.Error()) || !strings.Contains(line, "no NAT-PMP reply") {
		t.Fatalf("helper said %q; want %q after no NAT-PMP reply", line, ErrNotFound)
	}
	if err := h.Wait(t, 30*time.Second); err == nil {
		t.Fatalf("helper exited 0 without a router:\n%s", h.Output())
	}
}
