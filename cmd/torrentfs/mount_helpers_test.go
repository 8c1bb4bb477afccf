package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// Helpers for the mount tests: they run the real binary (built once per test run) as a
// seeder and as the mount, each a child process, and touch the mount only through more
// child processes (cat, dd, cmp), as a user would; a test process reading a FUSE mount can
// hang with it, which would turn a bug into a stuck test run instead of a failure.

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// torrentfsBin builds the command once per test run.
func torrentfsBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "torrentfs-test-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "torrentfs")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tfile is one file of a test torrent, path relative to the torrent's name.
type tfile struct {
	path string
	size int
}

// fixture writes files with random contents under DIR/data/<name> and makes a torrent of
// them with 256 KiB pieces. A single tfile with an empty path makes a single-file torrent.
func fixture(t *testing.T, name string, files ...tfile) (torrent, data string, content map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	content = map[string][]byte{}
	rng := rand.New(rand.NewPCG(uint64(len(name)), 42))
	for _, f := range files {
		p := filepath.Join(data, name, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, f.size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		content[filepath.Join(name, f.path)] = b
	}
	torrent = filepath.Join(dir, name+".torrent")
	out, err := exec.Command(torrentfsBin(t), "create", "-piece-size", "256K", "-o", torrent, filepath.Join(data, name)).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	return torrent, data, content
}

var seedPort = regexp.MustCompile(`on port (\d+)`)

// seeder serves data on 127.0.0.1 and returns its address.
func seeder(t *testing.T, torrent, data string) string {
	t.Helper()
	return startSeed(t, "127.0.0.1", data, nil, torrent)
}

// startSeed runs `torrentfs seed` of torrents from data on ip with the extra flags, waits
// until it serves every one of them, and returns its address.
func startSeed(t *testing.T, ip, data string, extra []string, torrents ...string) string {
	t.Helper()
	args := append([]string{"seed", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", ip + ":0", "--data", data}, extra...)
	p := testutil.Start(t, torrentfsBin(t), append(args, torrents...)...)
	var port string
	testutil.WaitFor(t, 30*time.Second, "the seeder's port", func() bool {
		if p.Exited() {
			t.Fatalf("seeder exited: %v\n%s", p.Err(), p.Stderr())
		}
		if strings.Count(p.Stdout(), "seeding ") < len(torrents) {
			return false
		}
		port = seedPort.FindStringSubmatch(p.Stdout())[1]
		return true
	})
	return ip + ":" + port
}

// silentPeer is an address that accepts connections but never says a word.
func silentPeer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// mountAt starts `torrentfs mount` and waits until the kernel lists the mount. At the end
// of the test it is stopped with SIGTERM, or detached if that fails.
func mountAt(t *testing.T, torrent, mnt string, args ...string) *testutil.Proc {
	t.Helper()
	testutil.NeedFUSE(t)
	// A stale mount point exists but cannot be stat'ed, so MkdirAll would fail on it.
	if err := os.Mkdir(mnt, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	argv := append([]string{"mount", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0"}, args...)
	p := testutil.Start(t, torrentfsBin(t), append(argv, torrent, mnt)...)
	t.Cleanup(func() {
		if !p.Exited() {
			p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.Done():
			case <-time.After(5 * time.Second):
				t.Errorf("mount did not stop on SIGTERM; stderr:\n%s", p.Stderr())
			}
		}
		if isMounted(mnt) {
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	// The line on stdout comes after the kernel took the mount; /proc/mounts alone could
	// still show a stale mount this one replaces.
	testutil.WaitFor(t, 15*time.Second, "the mount to come up", func() bool {
		if p.Exited() {
			t.Fatalf("mount exited: %v\n%s", p.Err(), p.Stderr())
		}
		return strings.Contains(p.Stdout(), "mounted ") && isMounted(mnt)
	})
	return p
}

// sh runs a shell command and returns its stdout; it fails the test on error.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", script, err, stderr)
	}
	return string(out)
}

var downloadedField = regexp.MustCompile(`downloaded=(\d+)`)

// downloaded is the byte count a stopped mount logged for its session.
func downloaded(t *testing.T, p *testutil.Proc) int64 {
	t.Helper()
	m := downloadedField.FindStringSubmatch(p.Stderr())
	if m == nil {
		t.Fatalf("no downloaded= in the mount's log:\n%s", p.Stderr())
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// waitFiles waits until the torrent directory dir of a mount lists something: a magnet's
// directory shows at once and fills when the metadata is in.
func waitFiles(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, "the files of "+filepath.Base(dir), func() bool {
		out, err := exec.Command("ls", "-A", dir).Output()
		return err == nil && len(strings.TrimSpace(string(out))) > 0
	})
}
