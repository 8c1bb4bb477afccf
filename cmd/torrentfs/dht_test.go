package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// The DHT tests run on a LAN of test hosts (network namespaces on a bridge, 10.x
// addresses): Transmission's DHT ignores 127/8 nodes and libtorrent's takes one node per
// address. Our mounts run in the test's own namespace, on the bridge's address, so the
// kernel's view of their FUSE mounts is ours.

// dhtPort is the UDP port every DHT node of a lab listens on (each host has its own IP).
const dhtPort = "6881"

// dhtLab is a DHT of our own nodes (`torrentfs dht serve`) on hosts[:nodes], the first
// of which is where the others started, plus hosts for the clients under test.
type dhtLab struct {
	net   *netns.Net
	nodes int
}

func newDHTLab(t *testing.T, nodes, clients int) *dhtLab {
	t.Helper()
	testutil.Need(t, "ip")
	lab := &dhtLab{net: netns.New(t, nodes+clients), nodes: nodes}
	for i := range nodes {
		h := lab.net.Hosts[i]
		args := []string{"dht", "serve", "--listen", h.IP.String() + ":" + dhtPort, "--dht-state", "none", "--every", "1s"}
		if i > 0 {
			args = append(args, "--dht-bootstrap", lab.node(0))
		}
		argv := h.Command(torrentfsBin(t), args...)
		testutil.Start(t, argv[0], argv[1:]...)
	}
	return lab
}

// node is the DHT address of our node on host i.
func (l *dhtLab) node(i int) string { return l.net.Hosts[i].IP.String() + ":" + dhtPort }

// client is the i-th host left for clients.
func (l *dhtLab) client(i int) *netns.Host { return l.net.Hosts[l.nodes+i] }

var peerLine = regexp.MustCompile(`(?m)^ +[0-9.]+s +(\S+)$`)

// waitAnnounced waits until a lookup from the test's namespace, starting at node boot,
// finds want among the peers of the torrent (the seeder announced itself).
func (l *dhtLab) waitAnnounced(t *testing.T, ih metainfo.Hash, boot, want string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(90 * time.Second)
	// Every try is the same node (address, port and ID, through its state file): a new node
	// each time would leave dead entries in the lab's tables that slow later lookups down.
	state := filepath.Join(t.TempDir(), "probe.state")
	for {
		out, err := combinedOutput(torrentfsBin(t), "dht", "get-peers", "--listen", l.net.BridgeIP.String()+":"+dhtPort,
			"--dht-bootstrap", boot, "--dht-state", state, "--timeout", "5s", "--max", "1", ih.HexString())
		last = out
		if err != nil {
			t.Fatalf("dht get-peers: %v\n%s", err, out)
		}
		for _, m := range peerLine.FindAllStringSubmatch(out, -1) {
			if m[1] == want {
				t.Logf("dht get-peers found the seeder:\n%s", last)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seeder's announce (%s) did not reach the DHT in 90 s; the last lookup said:\n%s", want, last)
		}
		time.Sleep(time.Second)
	}
}

func combinedOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// mountMagnetThroughDHT mounts a bare magnet link (no tracker, no x.pe) whose only help is
// one DHT node to start from, and checks every file against data.
func mountMagnetThroughDHT(t *testing.T, l *dhtLab, torrent, data, boot string) {
	t.Helper()
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	link := "magnet:?xt=urn:btih:" + mi.InfoHash.HexString()
	mnt := filepath.Join(t.TempDir(), "mnt")
	start := time.Now()
	p := mountAt(t, link, mnt, "--no-dht=false", "--listen", l.net.BridgeIP.String()+":0",
		"--dht-bootstrap", boot, "--dht-state", filepath.Join(t.TempDir(), "dht.state"), "--cache-dir", t.TempDir())
	waitFiles(t, filepath.Join(mnt, mi.Info.Name), 60*time.Second)
	t.Logf("files shown after %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(p.Stderr(), "peers from dht") {
		t.Errorf("the mount did not say it found peers through the DHT:\n%s", p.Stderr())
	}
	testpeers.SameTree(t, filepath.Join(data, mi.Info.Name), filepath.Join(mnt, mi.Info.Name))
}

// A bare magnet resolves and mounts through the DHT when the seeder is a real aria2c whose
// DHT node is the only one we are given.
func TestMountMagnetDHTAria2(t *testing.T) {
	testutil.NeedFUSE(t)
	t.Parallel() // with the other DHT tests, once the rest of the package is done
	torrent, data, _ := fixture(t, "dht-aria2", tfile{"a.bin", 900 << 10}, tfile{"b/c.bin", 300<<10 + 7})
	lab := newDHTLab(t, 4, 1)
	h := lab.client(0)
	testpeers.Aria2(t, torrent, data, testpeers.Aria2Opts{
		IP: h.IP.String(), Port: 6882, Seed: true, DHTEntry: lab.node(0), DHTPort: 6881, Wrap: in(h),
	})
	mi, _ := metainfo.Load(torrent)
	seederDHT := h.IP.String() + ":" + dhtPort
	lab.waitAnnounced(t, mi.InfoHash, lab.node(1), h.IP.String()+":6882")
	mountMagnetThroughDHT(t, lab, torrent, data, seederDHT)
}

// The same with a real Transmission seeder.
func TestMountMagnetDHTTransmission(t *testing.T) {
	testutil.NeedFUSE(t)
	t.Parallel()
	torrent, data, _ := fixture(t, "dht-transmission", tfile{"a.bin", 900 << 10}, tfile{"b/c.bin", 300<<10 + 7})
	lab := newDHTLab(t, 12, 1) // its DHT announces only once it knows more than 8 nodes
	h := lab.client(0)
	var nodes []string
	for i := range lab.nodes {
		nodes = append(nodes, lab.node(i))
	}
	testpeers.TransmissionWith(t, torrent, data, testpeers.TransmissionOpts{
		IP: h.IP.String(), Port: 6881, DHTBootstrap: nodes, Wrap: in(h),
	})
	mi, _ := metainfo.Load(torrent)
	lab.waitAnnounced(t, mi.InfoHash, lab.node(1), h.IP.String()+":6881")
	mountMagnetThroughDHT(t, lab, torrent, data, h.IP.String()+":6881")
}

// And the other way: a real aria2c given a bare magnet and our seeder's DHT node as its
// only contact downloads from our `seed`.
func TestAria2GetsMagnetFromOurSeedThroughDHT(t *testing.T) {
	t.Parallel()
	torrent, data, _ := fixture(t, "dht-aria2-get", tfile{"a.bin", 900 << 10}, tfile{"b/c.bin", 300<<10 + 7})
	lab := newDHTLab(t, 4, 2)
	seedHost, getHost := lab.client(0), lab.client(1)
	mi, link := lab.seedThroughDHT(t, seedHost, torrent, data)
	out := t.TempDir()
	testpeers.Aria2(t, link, out, testpeers.Aria2Opts{
		IP: getHost.IP.String(), Port: 6882, DHTEntry: seedHost.IP.String() + ":6881", DHTPort: 6881,
		Wrap: in(getHost),
	})
	testutil.WaitFor(t, 120*time.Second, "aria2c to download from our seed", func() bool {
		return testpeers.TreeMatches(filepath.Join(data, mi.Info.Name), filepath.Join(out, mi.Info.Name))
	})
}

// And a real Transmission given a bare magnet and our seeder's DHT node as its only
// contact downloads from our `seed`. (It looks up a torrent only once it knows more than 8
// nodes, which it learns through our node: about a minute.)
func TestTransmissionGetsMagnetFromOurSeedThroughDHT(t *testing.T) {
	t.Parallel()
	torrent, data, _ := fixture(t, "dht-transmission-get", tfile{"a.bin", 900 << 10}, tfile{"b/c.bin", 300<<10 + 7})
	lab := newDHTLab(t, 12, 2)
	seedHost, getHost := lab.client(0), lab.client(1)
	mi, link := lab.seedThroughDHT(t, seedHost, torrent, data)
	out := t.TempDir()
	testpeers.TransmissionWith(t, link, out, testpeers.TransmissionOpts{
		IP: getHost.IP.String(), Port: 6881, DHTBootstrap: []string{seedHost.IP.String() + ":6881"}, Wrap: in(getHost),
	})
	testutil.WaitFor(t, 150*time.Second, "Transmission to download from our seed", func() bool {
		return testpeers.TransmissionHas(filepath.Join(data, mi.Info.Name), filepath.Join(out, mi.Info.Name))
	})
}

// seedThroughDHT runs our `seed` of torrent in host h, its DHT starting from the lab's first
// node, and waits until a lookup finds it; it returns the torrent and its bare magnet link.
func (l *dhtLab) seedThroughDHT(t *testing.T, h *netns.Host, torrent, data string) (*metainfo.MetaInfo, string) {
	t.Helper()
	argv := h.Command(torrentfsBin(t), "seed", "--no-lsd", "--no-port-map", "--listen", h.IP.String()+":6881",
		"--dht-bootstrap", l.node(0), "--dht-state", "none", "--data", data, torrent)
	testutil.Start(t, argv[0], argv[1:]...)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	l.waitAnnounced(t, mi.InfoHash, l.node(1), h.IP.String()+":6881")
	return mi, "magnet:?xt=urn:btih:" + mi.InfoHash.HexString()
}

// in is the argv prefix that runs a program in host h.
func in(h *netns.Host) []string { return h.Prefix() }
