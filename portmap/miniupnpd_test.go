package portmap

// Against a real router: miniupnpd (NAT-PMP and UPnP IGD) in a test host's namespace, with
// our mapper in a second host whose default route points at it. upnpc, run in the client's
// namespace, lists the router's mappings, NAT-PMP's too.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

const (
	testTCP = 6881
	testUDP = 6882
)

type lab struct {
	router, client *netns.Host
	r              *testpeers.Router
}

// newLab starts miniupnpd in one host and makes it the other host's default gateway.
func newLab(t *testing.T) *lab {
	t.Helper()
	nt := netns.New(t, 2)
	l := &lab{router: nt.Hosts[0], client: nt.Hosts[1]}
	l.r = testpeers.NewRouter(t, l.router, l.client)
	return l
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
	want := fmt.Sprintf("mapped %s %s tcp=%d udp=%d", name, testpeers.RouterWAN, testTCP, testUDP)
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
	if ms := l.r.Mappings(t); len(ms) != 0 {
		t.Errorf("mappings left after Close: %+v", ms)
	}
}

func (l *lab) checkMapped(t *testing.T) {
	t.Helper()
	got := map[string]testpeers.Mapping{}
	for _, m := range l.r.Mappings(t) {
		got[m.Proto] = m
	}
	for proto, port := range map[string]int{"TCP": testTCP, "UDP": testUDP} {
		m, ok := got[proto]
		switch {
		case !ok:
			t.Errorf("no %s mapping on the router; it has %+v", proto, got)
		case m.InternalAddr != l.client.IP.String() || m.Internal != port || m.External != port:
			t.Errorf("%s mapping %+v, want %d -> %s:%d", proto, m, port, l.client.IP, port)
		case m.Lease == 0:
			t.Errorf("%s mapping %+v is permanent; we asked for a lease", proto, m)
		}
	}
}
