package testpeers

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// ltpeer is a scripted libtorrent peer (Debian's python3-libtorrent): see its docstring
// for the lines it prints.
//
//go:embed ltpeer.py
var ltpeer []byte

// libtorrentPython is the interpreter that sees Debian's python3-libtorrent: a python3
// earlier on PATH may not.
const libtorrentPython = "/usr/bin/python3"

// LibtorrentOpts configures a libtorrent peer.
type LibtorrentOpts struct {
	IP   string // listen and outgoing address (a netns host's, for a DHT test)
	Port int    // TCP listen port, which its DHT node's UDP socket shares; 0 picks a free one on IP
	// Bootstrap is the DHT nodes (IP:PORT) it starts from, and the only ones: it never
	// falls back to public routers.
	Bootstrap []string
	Torrent   string // a .torrent file or a magnet link
	SaveDir   string // where the data is (seeding) or goes (downloading)
	// Seed says the data under SaveDir is complete: the peer exits with an error if its
	// check finds otherwise.
	Seed bool
	// UTPOnly connects peers over uTP only (BEP 29), never TCP.
	UTPOnly bool
	// Peers are connected to once the torrent is added.
	Peers []string
	// Wrap is put before the command, e.g. a netns.Host's `ip netns exec NAME`.
	Wrap []string
}

// Libtorrent starts a libtorrent 2.0 peer (python3-libtorrent): DHT on from o.Bootstrap
// only, LSD, UPnP, NAT-PMP, PEX and µTP off, encryption allowed but not required. It keeps
// running (seeding) once complete. Wait for its states with LibtorrentWait.
func Libtorrent(t testing.TB, o LibtorrentOpts) *testutil.Proc {
	t.Helper()
	NeedLibtorrent(t)
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = FreePort(t, o.IP)
	}
	script := filepath.Join(t.TempDir(), "ltpeer.py")
	if err := os.WriteFile(script, ltpeer, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{libtorrentPython, "-u", script,
		"--listen", o.IP + ":" + strconv.Itoa(o.Port), "--bootstrap", strings.Join(o.Bootstrap, ","),
		"--save", o.SaveDir, "--parent", strconv.Itoa(os.Getpid()), "--verbose"}
	if o.Seed {
		args = append(args, "--seed")
	}
	if o.UTPOnly {
		args = append(args, "--utp-only")
	}
	for _, p := range o.Peers {
		args = append(args, "--peer", p)
	}
	args = append(args, o.Torrent)
	argv := append(append([]string{}, o.Wrap...), args...)
	return testutil.Start(t, argv[0], argv[1:]...)
}

// LibtorrentWait waits up to d for a libtorrent peer to print a line that is event
// ("seeding", "finished", "metadata", ...), failing the test if it exits or says "error"
// first.
func LibtorrentWait(t testing.TB, p *testutil.Proc, event string, d time.Duration) {
	t.Helper()
	if l := LibtorrentWaitErr(t, p, event, d); l != "" {
		t.Fatalf("libtorrent failed: %s\n%s", l, p.Output())
	}
}

// LibtorrentWaitErr is LibtorrentWait that returns libtorrent's error line, if it reports
// one first, instead of failing the test ("" once event is seen).
func LibtorrentWaitErr(t testing.TB, p *testutil.Proc, event string, d time.Duration) string {
	t.Helper()
	var failed string
	testutil.WaitFor(t, d, "libtorrent to say "+event, func() bool {
		out := p.Stdout()
		for _, l := range strings.Split(out, "\n") {
			if l == event {
				return true
			}
			if strings.HasPrefix(l, "error") {
				failed = l
				return true
			}
		}
		if p.Exited() {
			t.Fatalf("libtorrent exited (%v) before saying %s:\n%s", p.Err(), event, p.Output())
		}
		return false
	})
	return failed
}

// NeedLibtorrent fails the test when python3-libtorrent is missing, or skips it when
// TORRENTFS_ALLOW_SKIP=1 (scripts/test installs it).
func NeedLibtorrent(t testing.TB) {
	t.Helper()
	if err := exec.Command(libtorrentPython, "-c", "import libtorrent").Run(); err != nil {
		if os.Getenv("TORRENTFS_ALLOW_SKIP") == "1" {
			t.Skip("python3-libtorrent is not installed")
		}
		t.Fatalf("python3-libtorrent is not installed (scripts/test installs it): %v", err)
	}
}
