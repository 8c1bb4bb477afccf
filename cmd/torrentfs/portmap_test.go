package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// A seed behind a home router (miniupnpd in a test host) has its TCP port and its DHT
// node's UDP port forwarded while it runs, and no longer once it has stopped.
func TestSeedMapsItsPortsOnTheRouter(t *testing.T) {
	t.Parallel()
	torrent, data, _ := fixture(t, "portmap-seed", tfile{"a.bin", 100 << 10})
	nt := netns.New(t, 2)
	client := nt.Hosts[1]
	router := testpeers.NewRouter(t, nt.Hosts[0], client)

	// A DHT node that knows nobody: enough to have a UDP port to forward.
	argv := client.Command(torrentfsBin(t), "seed", "--no-lsd", "--no-trackers", "--listen", client.IP.String()+":6881",
		"--dht-bootstrap", nt.Hosts[0].IP.String()+":6881", "--dht-state", "none", "--data", data, torrent)
	p := testutil.Start(t, argv[0], argv[1:]...)
	testutil.WaitFor(t, 30*time.Second, "the seed to map its ports", func() bool {
		if p.Exited() {
			t.Fatalf("seed exited: %v\n%s", p.Err(), p.Output())
		}
		return strings.Contains(p.Stderr(), "DHT node on UDP port")
	})
	if !strings.Contains(p.Stderr(), "external address "+testpeers.RouterWAN) {
		t.Fatalf("the seed did not report the router's external address:\n%s", p.Stderr())
	}
	got := map[string]testpeers.Mapping{}
	for _, m := range router.Mappings(t) {
		got[m.Proto] = m
	}
	for _, proto := range []string{"TCP", "UDP"} {
		m := got[proto]
		if m.External != 6881 || m.Internal != 6881 || m.InternalAddr != client.IP.String() {
			t.Errorf("%s mapping %+v, want 6881 -> %s:6881", proto, m, client.IP)
		}
	}

	if err := syscall.Kill(p.Cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, 30*time.Second)
	if ms := router.Mappings(t); len(ms) != 0 {
		t.Errorf("mappings left after the seed stopped: %+v", ms)
	}
}
