package main

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// Peers over IPv6 end to end: a seeder listening on the default (both families) serves
// gets that dial it at [::1], one listening on [::1] and one on both families.
func TestGetOverIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	src := t.TempDir()
	_, torrent := writeTorrent(t, src)
	// The default --listen, ":PORT", takes IPv4 and IPv6 alike.
	seedArgs := []string{"seed", "--no-dht", "--no-lsd", "--no-trackers", "--listen", net.JoinHostPort("", strconv.Itoa(port)), "--data", src, torrent}
	testutil.Start(t, torrentfsBin(t), seedArgs...)
	addr6 := net.JoinHostPort("::1", strconv.Itoa(port))
	testutil.WaitListening(t, addr6, 10*time.Second)
	testutil.WaitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)

	for _, listen := range []string{"[::1]:0", ":0"} {
		out := t.TempDir()
		runGet(t, "--no-trackers", "--listen", listen, "--peer", addr6, "--out", out, torrent)
		testpeers.SameTree(t, filepath.Join(src, "set"), filepath.Join(out, "set"))
	}
}
