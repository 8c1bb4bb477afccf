package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// Run these under the workplace's netjail (scripts/lib.sh finds it):
//   netjail go test -race -count=1 -run Mount ./cmd/torrentfs/

var albumFiles = []tfile{
	{"cover.jpg", 300<<10 + 17},
	{"disc1/01 intro.flac", 2<<20 + 5},
	{"disc1/02.flac", 0},
	{"disc2/03.flac", 1<<20 + 123},
	{"notes.txt", 99},
}

func TestMountTreeBeforePeers(t *testing.T) {
	torrent, _, content := fixture(t, "album", albumFiles...)
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--peer", silentPeer(t), "--cache-dir", t.TempDir(), "--read-timeout", "1s", "--uid", "1234", "--gid", "99")
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	owner := sh(t, "stat -c '%u %g %Y' "+filepath.Join(mnt, "album")+" "+filepath.Join(mnt, "album/notes.txt"))
	if want := fmt.Sprintf("1234 99 %d\n", mi.CreationDate); owner != want+want {
		t.Errorf("owner and mtime:\n%swant each %s", owner, want)
	}
	got := sh(t, "cd "+mnt+" && find . -printf '%p %s %m %y\\n' | sort")
	var want []string
	want = append(want, ". 0 555 d", "./album 0 555 d", "./album/disc1 0 555 d", "./album/disc2 0 555 d")
	for name, b := range content {
		want = append(want, fmt.Sprintf("./%s %d 444 f", name, len(b)))
	}
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("listing lacks %q:\n%s", w, got)
		}
	}
	// Directory sizes vary by file system; compare the count of entries instead.
	if n := strings.Count(got, "\n"); n != len(want) {
		t.Errorf("listing has %d entries, want %d:\n%s", n, len(want), got)
	}
	// With no peer answering, a read gives up at --read-timeout with EIO.
	out, err := exec.Command("cat", filepath.Join(mnt, "album/notes.txt")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Input/output error") {
		t.Errorf("read with no data: %v %s", err, out)
	}
}

func TestMountCmpEveryFile(t *testing.T) {
	torrent, data, content := fixture(t, "album", albumFiles...)
	peer := seeder(t, torrent, data)
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", t.TempDir())
	for name := range content {
		if out, err := exec.Command("cmp", filepath.Join(mnt, name), filepath.Join(data, name)).CombinedOutput(); err != nil {
			t.Errorf("cmp %s: %v %s", name, err, out)
		}
	}
}

func TestMountRandomReads(t *testing.T) {
	const size = 12<<20 + 4321
	torrent, data, content := fixture(t, "movie.mkv", tfile{"", size})
	want := content["movie.mkv"]
	peer := seeder(t, torrent, data)
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", t.TempDir())
	path := filepath.Join(mnt, "movie.mkv", "movie.mkv")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		off := rng.Int64N(size + 1000) // some start past the end
		n := 1 + rng.Int64N(600<<10)
		cmd := exec.Command("dd", "if="+path, "iflag=skip_bytes,count_bytes", "bs=64K",
			"skip="+strconv.FormatInt(off, 10), "count="+strconv.FormatInt(n, 10), "status=none")
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("read %d: dd %d bytes at %d: %v", i, n, off, err)
		}
		lo, hi := min(off, size), min(off+n, size)
		if !bytes.Equal(got, want[lo:hi]) {
			t.Fatalf("read %d: %d bytes at %d: got %d bytes, not the file's", i, n, off, len(got))
		}
	}
}

func TestMountTwoReaders(t *testing.T) {
	const size = 16 << 20
	torrent, data, _ := fixture(t, "movie.mkv", tfile{"", size})
	peer := seeder(t, torrent, data)
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", t.TempDir())
	orig, path := filepath.Join(data, "movie.mkv"), filepath.Join(mnt, "movie.mkv", "movie.mkv")
	// One reads from the start, the other from the middle, at the same time.
	a := testutil.Start(t, "cmp", path, orig)
	b := testutil.Start(t, "cmp", "-i", strconv.Itoa(size/2), path, orig)
	for name, p := range map[string]*testutil.Proc{"from start": a, "from middle": b} {
		if err := p.Wait(t, 20*time.Second); err != nil {
			t.Errorf("cmp %s: %v %s%s", name, err, p.Stdout(), p.Stderr())
		}
	}
}

func TestMountInterruptBlockedRead(t *testing.T) {
	torrent, _, _ := fixture(t, "movie.mkv", tfile{"", 2 << 20})
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--cache-dir", t.TempDir())
	cat := testutil.Start(t, "cat", filepath.Join(mnt, "movie.mkv", "movie.mkv"))
	waitBlocked(t, cat)
	cat.Cmd.Process.Signal(syscall.SIGINT)
	if err := cat.Wait(t, 3*time.Second); err == nil {
		t.Error("interrupted cat exited 0")
	}
}

// waitBlocked waits until p sleeps in a read of the mount: in FUSE's wait for an answer,
// or for a page-cache page that FUSE readahead is filling.
func waitBlocked(t *testing.T, p *testutil.Proc) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "the reader to block in the mount", func() bool {
		if p.Exited() {
			t.Fatalf("reader exited: %v %s", p.Err(), p.Stderr())
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", p.Cmd.Process.Pid))
		w := string(b)
		return strings.Contains(w, "fuse") || strings.Contains(w, "folio") || strings.Contains(w, "page") || strings.Contains(w, "wait_answer")
	})
}

func TestMountSIGTERMWithBlockedRead(t *testing.T) {
	torrent, _, _ := fixture(t, "movie.mkv", tfile{"", 2 << 20})
	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--cache-dir", t.TempDir())
	cat := testutil.Start(t, "cat", filepath.Join(mnt, "movie.mkv", "movie.mkv"))
	waitBlocked(t, cat)
	m.Cmd.Process.Signal(syscall.SIGTERM)
	// The product's bound is 2 s; a little more here so a loaded machine does not flake.
	if err := m.Wait(t, 4*time.Second); err != nil {
		t.Errorf("mount exited with %v after SIGTERM; stderr:\n%s", err, m.Stderr())
	}
	if isMounted(mnt) {
		t.Error("still mounted after SIGTERM")
	}
	if err := cat.Wait(t, 3*time.Second); err == nil {
		t.Error("reader blocked at shutdown exited 0")
	}
}

func TestMountUmountCommand(t *testing.T) {
	torrent, _, _ := fixture(t, "a.bin", tfile{"", 1000})
	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--cache-dir", t.TempDir())
	if out, err := exec.Command(torrentfsBin(t), "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if err := m.Wait(t, 5*time.Second); err != nil {
		t.Errorf("mount exited with %v after umount; stderr:\n%s", err, m.Stderr())
	}
	out, err := exec.Command(torrentfsBin(t), "umount", mnt).CombinedOutput()
	if code := exitCode(err); code != exitRuntime || !strings.Contains(string(out), "not mounted") {
		t.Errorf("umount of a plain directory: exit %d, %s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestMountRemountReusesCache(t *testing.T) {
	const size = 6 << 20
	torrent, data, _ := fixture(t, "movie.mkv", tfile{"", size})
	peer := seeder(t, torrent, data)
	cacheDir := t.TempDir()
	orig := filepath.Join(data, "movie.mkv")
	var got [2]int64
	for i := range got {
		mnt := filepath.Join(t.TempDir(), "m")
		m := mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", cacheDir)
		sh(t, "cmp "+filepath.Join(mnt, "movie.mkv", "movie.mkv")+" "+orig)
		m.Cmd.Process.Signal(syscall.SIGTERM)
		if err := m.Wait(t, 5*time.Second); err != nil {
			t.Fatalf("mount %d: %v\n%s", i, err, m.Stderr())
		}
		got[i] = downloaded(t, m)
	}
	if got[0] < size || got[1] != 0 {
		t.Errorf("downloaded %d bytes on the first mount and %d on the second; want all, then none", got[0], got[1])
	}
}

func TestMountBoundedCache(t *testing.T) {
	const size = 24 << 20
	torrent, data, _ := fixture(t, "movie.mkv", tfile{"", size})
	peer := seeder(t, torrent, data)
	cacheDir := t.TempDir()
	mnt := filepath.Join(t.TempDir(), "m")
	const bound = size / 3
	mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", cacheDir, "--cache-size", strconv.Itoa(bound))
	c := testutil.Start(t, "cmp", filepath.Join(mnt, "movie.mkv", "movie.mkv"), filepath.Join(data, "movie.mkv"))
	var most int64
	for !c.Exited() {
		out, err := exec.Command("du", "-s", "-B1", cacheDir).Output()
		if err == nil {
			n, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
			most = max(most, n)
		}
		select {
		case <-c.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if c.Err() != nil {
		t.Fatalf("cmp through a bounded cache: %v %s%s", c.Err(), c.Stdout(), c.Stderr())
	}
	// Pieces in flight count against the bound; allow for the directory's own blocks and
	// the resume file.
	if limit := int64(bound + 64<<10); most > limit {
		t.Errorf("cache used up to %d bytes on disk, bound %d", most, bound)
	}
	t.Logf("cache peaked at %d bytes on disk (bound %d)", most, bound)
}

func TestMountStaleMount(t *testing.T) {
	torrent, _, _ := fixture(t, "a.bin", tfile{"", 1000})
	mnt := filepath.Join(t.TempDir(), "m")
	cacheDir := t.TempDir()
	m := mountAt(t, torrent, mnt, "--cache-dir", cacheDir)
	m.Cmd.Process.Kill()
	<-m.Done()
	if _, err := os.Stat(mnt); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("killed mount left %v, want a stale mount", err)
	}
	m2 := mountAt(t, torrent, mnt, "--cache-dir", cacheDir)
	if got := sh(t, "ls "+mnt); got != "a.bin\n" {
		t.Errorf("after clearing the stale mount: ls %q", got)
	}
	if !strings.Contains(m2.Stderr(), "stale") {
		t.Errorf("second mount did not say it cleared a stale mount:\n%s", m2.Stderr())
	}
}

func TestMountBadMountpoint(t *testing.T) {
	testutil.NeedFUSE(t)
	torrent, _, _ := fixture(t, "a.bin", tfile{"", 1000})
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	for _, tc := range []struct {
		name, dir, want string
		code            int
		extra           []string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "does not exist", exitRuntime, nil},
		{"not empty", full, "not empty", exitRuntime, nil},
		{"cache too small", t.TempDir(), "too small", exitRuntime, []string{"--cache-size", "1M"}},
		{"one argument", "", "want a .torrent file and a mount point", exitUsage, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"mount", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0", "--cache-dir", t.TempDir()}, tc.extra...)
			args = append(args, torrent)
			if tc.dir != "" {
				args = append(args, tc.dir)
			}
			out, err := exec.Command(torrentfsBin(t), args...).CombinedOutput()
			if code := exitCode(err); code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d, want %d with %q; output:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}
