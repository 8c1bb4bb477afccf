package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// Full-disk tests: the cache (or the download) lives on a small tmpfs the test mounts, and
// real aria2c peers seed a torrent several times larger.

// TestMountDiskFull streams a 128 MiB file through a mount whose cache has a 40 MiB disk
// and no --cache-size: the disk fills, the cache shrinks to it, and the whole file still
// reads back right; no seeder is blamed, memory stays bounded and unmount is quick.
func TestMountDiskFull(t *testing.T) {
	testutil.NeedFUSE(t)
	const size = 128 << 20
	_, torrent, src := mountTorrentFiles(t, "film.bin", map[string]int64{"": size}, 1<<20)
	_, addrs := mountAria2Seeders(t, torrent, src, "", "127.0.0.11", "127.0.0.12")
	disk := testutil.SmallDisk(t, "40m")
	mnt := filepath.Join(t.TempDir(), "m")
	args := append([]string{"--log-level", "debug", "--cache-dir", disk}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)

	sum := testutil.Start(t, "sha256sum", filepath.Join(mnt, "film.bin", "film.bin"))
	if err := mountWaitReader(t, sum, m, 120*time.Second); err != nil {
		t.Fatalf("sha256sum through the mount: %v\n%s", err, sum.Stderr())
	}
	if got, want := strings.Fields(sum.Stdout())[0], fileSHA256(t, filepath.Join(src, "film.bin")); got != want {
		t.Fatalf("sha256 through the mount %s, want %s", got, want)
	}
	log := m.Stderr()
	if !strings.Contains(log, "disk full") {
		t.Fatal("the mount never found its disk full: the test did not test it")
	}
	if strings.Contains(log, "banning peer") {
		t.Errorf("a seeder was banned for our own full disk:\n%s", grepLines(log, "banning peer"))
	}
	if rss := peakRSS(t, m.Cmd.Process.Pid); rss > 256<<20 {
		t.Errorf("peak RSS %d MiB while streaming on a full disk", rss>>20)
	} else {
		t.Logf("peak RSS %d MiB", rss>>20)
	}
	start := time.Now()
	m.Cmd.Process.Signal(syscall.SIGTERM)
	if err := m.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("unmount took %v, want under 2 s", d)
	}
}

// TestMountReadTooBigForDisk: pieces larger than the cache's disk cannot be served. A read
// of one fails with an errno within seconds (not a hang); the mount lives on, lists its
// files and serves the piece that does fit, from the cache.
func TestMountReadTooBigForDisk(t *testing.T) {
	testutil.NeedFUSE(t)
	const piece = 8 << 20
	mi, torrent, src := mountTorrentFiles(t, "big.bin", map[string]int64{"": piece + 1<<20}, piece)
	_, addrs := mountAria2Seeders(t, torrent, src, "", "127.0.0.11")
	disk := testutil.SmallDisk(t, "6m")
	mnt := filepath.Join(t.TempDir(), "m")
	args := append([]string{"--log-level", "debug", "--cache-dir", disk}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)
	path := filepath.Join(mnt, "big.bin", "big.bin")
	orig, err := os.ReadFile(filepath.Join(src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	readTail := func() {
		t.Helper()
		p := testutil.Start(t, "dd", "if="+path, "bs=64K", "skip="+strconv.Itoa((piece+512<<10)/(64<<10)), "count=1", "status=none")
		if err := mountWaitReader(t, p, m, 30*time.Second); err != nil {
			t.Fatalf("read of the piece that fits: %v\n%s", err, p.Stderr())
		}
		if !bytes.Equal([]byte(p.Stdout()), orig[piece+512<<10:piece+512<<10+64<<10]) {
			t.Fatal("the piece that fits read back wrong")
		}
	}
	readTail()

	start := time.Now()
	head := testutil.Start(t, "dd", "if="+path, "bs=64K", "count=1", "status=none", "of=/dev/null")
	select {
	case <-head.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("a read of a piece bigger than the disk still hangs after 30 s; mount log:\n%s", m.Stderr())
	}
	if head.Err() == nil {
		t.Fatal("a read of a piece bigger than the disk succeeded")
	}
	t.Logf("the read failed after %v: %s", time.Since(start), strings.TrimSpace(head.Stderr()))
	if msg := head.Stderr(); !strings.Contains(msg, "No space left") && !strings.Contains(msg, "Input/output error") {
		t.Errorf("dd says %q, want ENOSPC or EIO", msg)
	}

	ents, err := exec.Command("ls", mnt).CombinedOutput()
	if err != nil || !strings.Contains(string(ents), "big.bin") {
		t.Fatalf("ls of the mount after the failed read: %v\n%s", err, ents)
	}
	readTail()
	if n := countOf(mountVerified(m), mi.Info.NumPieces()-1); n != 1 {
		t.Errorf("the last piece was verified %d times; want once (then served from the cache):\n%s", n, grepLines(m.Stderr(), "piece"))
	}
}

// TestGetDiskFullThenResume: get on a full disk exits 1 with one clear line and blames no
// peer; after space is freed, the same get finishes and fetches only what was missing.
func TestGetDiskFullThenResume(t *testing.T) {
	testutil.Need(t, "aria2c")
	const size = 12 << 20
	mi, torrent, src := mountTorrentFiles(t, "image.iso", map[string]int64{"": size}, 256<<10)
	_, addrs := mountAria2Seeders(t, torrent, src, "", "127.0.0.11")
	disk := testutil.SmallDisk(t, "4m")
	get := func() (string, error) {
		cmd := exec.Command(torrentfsBin(t), "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0", "--peer", addrs[0], "--out", disk, torrent)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return out.String(), err
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("get still running after 60 s:\n%s", out.String())
			return "", nil
		}
	}
	out, err := get()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("get on a full disk: %v, want exit status 1\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "torrentfs get: disk full: ") || !strings.Contains(last, "run again to resume") {
		t.Errorf("last line %q; want one clear disk-full line", last)
	}
	if strings.Count(out, "disk full") != 1 {
		t.Errorf("the disk-full error is printed %d times:\n%s", strings.Count(out, "disk full"), out)
	}
	if strings.Contains(out, "banning peer") {
		t.Errorf("the seeder was banned for our own full disk:\n%s", out)
	}
	if !regexp.MustCompile(`time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}`).MatchString(out) {
		t.Errorf("log times have no milliseconds:\n%s", out)
	}
	kept := verifiedBytes(t, &mi.Info, filepath.Join(disk, "image.iso"), filepath.Join(src, "image.iso"))
	if kept == 0 {
		t.Fatal("nothing verified survived the full disk")
	}

	testutil.GrowDisk(t, disk, "32m")
	out, err = get()
	if err != nil {
		t.Fatalf("get after freeing space: %v\n%s", err, out)
	}
	if got, want := fileSHA256(t, filepath.Join(disk, "image.iso")), fileSHA256(t, filepath.Join(src, "image.iso")); got != want {
		t.Fatal("the resumed download differs from the original")
	}
	m := regexp.MustCompile(`downloaded=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no downloaded= in get's log:\n%s", out)
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n != size-kept {
		t.Errorf("the resumed get downloaded %d bytes; %d were verified on disk, so want %d", n, kept, size-kept)
	}
}

// verifiedBytes is how many bytes of the single-file torrent's pieces at path match src.
func verifiedBytes(t *testing.T, info *metainfo.Info, path, src string) int64 {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for i := range info.NumPieces() {
		off, size := info.PieceOffset(i), info.PieceSize(i)
		if off+size <= int64(len(got)) && sha1.Sum(got[off:off+size]) == sha1.Sum(want[off:off+size]) {
			n += size
		}
	}
	return n
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// peakRSS is a process's peak resident set (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func countOf(xs []int, x int) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
