package fs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// These tests mount for real and touch the mount only from child processes: the test
// process serves it, and reading it from here could deadlock.

// mount serves ft at a temporary directory until the test ends.
func mount(t *testing.T, ft *fakeTorrent, o Options) (*Server, string) {
	t.Helper()
	testutil.NeedFUSE(t)
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	srv, err := Mount(dir, newFS(ft, o), MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Unmount(ctx); err != nil {
			t.Errorf("unmount: %v", err)
		}
		// Every serve, request and read-watch goroutine ends with the mount.
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines after unmount, %d before mount:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if !mounted(dir) {
		t.Fatalf("%s not in /proc/mounts after Mount", dir)
	}
	return srv, dir
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == dir && f[2] == "fuse.torrentfs" {
			return true
		}
	}
	return false
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func TestMountListAndRead(t *testing.T) {
	ft := multiFake()
	_, dir := mount(t, ft, Options{})
	// Listing works before any piece exists.
	got := run(t, "find", dir, "-printf", "%P %s %m\n")
	for _, want := range []string{"album 0 555", "album/a.txt 102407 444", "album/disc1/01.flac 307200 444", "album/disc1/02.flac 0 444", "album/disc2/deep/x.bin 5 444"} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("find output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "pad") {
		t.Errorf("pad file shown:\n%s", got)
	}
	ft.ProvideAll()
	f := ft.Info().Files[2]
	if out := run(t, "cat", filepath.Join(dir, "album/disc1/01.flac")); out != string(ft.Data()[f.Offset:f.Offset+f.Length]) {
		t.Error("cat 01.flac: wrong bytes")
	}
	if out := run(t, "cat", filepath.Join(dir, "album/disc1/02.flac")); out != "" {
		t.Error("empty file not empty")
	}
	// The figure is cached for up to a second after the listing above saw 0%.
	var out string
	testutil.WaitFor(t, 10*time.Second, "progress xattr to reach 100%", func() bool {
		out = run(t, "python3", "-c", `import os,sys; print(os.getxattr(sys.argv[1], "user.torrentfs.progress").decode())`, filepath.Join(dir, "album/a.txt"))
		return strings.TrimSpace(out) == "100.0%"
	})
	if got := run(t, "stat", "-c", "%b", filepath.Join(dir, "album/disc1/01.flac")); strings.TrimSpace(got) != "600" {
		t.Errorf("st_blocks of a complete 300 KiB file: %s", got)
	}
	if err := exec.Command("sh", "-c", "echo x > "+filepath.Join(dir, "album/a.txt")).Run(); err == nil {
		t.Error("write to a read-only mount succeeded")
	}
	testutil.WaitFor(t, 10*time.Second, "handles released", func() bool { return ft.NumWants() == 0 })
}

func TestMountInterruptAndTimeout(t *testing.T) {
	ft := newFake("f.bin", 64<<10, fakeFile{n: 1 << 20})
	_, dir := mount(t, ft, Options{ReadTimeout: 1500 * time.Millisecond})
	path := filepath.Join(dir, "f.bin", "f.bin")

	// A blocked cat dies promptly on SIGINT.
	cat := exec.Command("cat", path)
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "cat to block on a piece", func() bool { return ft.Blocked() > 0 })
	start := time.Now()
	cat.Process.Signal(syscall.SIGINT)
	cat.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("interrupted cat took %v to exit", d)
	}
	// The kernel's own readahead requests are not interruptible; they end at the timeout.
	testutil.WaitFor(t, 10*time.Second, "the interrupted read to let go", func() bool { return ft.Blocked() == 0 })

	// A read nobody can serve fails with EIO after --read-timeout.
	var stderr bytes.Buffer
	dd := exec.Command("dd", "if="+path, "of=/dev/null", "bs=4k", "count=1")
	dd.Stderr = &stderr
	if err := dd.Run(); err == nil || !strings.Contains(stderr.String(), "Input/output error") {
		t.Errorf("dd with no data: %v, %s", err, stderr.String())
	}
}

func TestUnmountWithBlockedRead(t *testing.T) {
	testutil.NeedFUSE(t)
	ft := newFake("f.bin", 64<<10, fakeFile{n: 1 << 20})
	dir := t.TempDir()
	srv, err := Mount(dir, newFS(ft, Options{}), MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cat := exec.Command("cat", filepath.Join(dir, "f.bin", "f.bin"))
	var stderr bytes.Buffer
	cat.Stderr = &stderr
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Process.Kill(); cat.Wait() })
	testutil.WaitFor(t, 10*time.Second, "cat to block", func() bool { return ft.Blocked() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Unmount(ctx); err != nil {
		t.Fatalf("unmount with a blocked reader: %v", err)
	}
	if err := cat.Wait(); err == nil || !strings.Contains(stderr.String(), "Input/output error") {
		t.Errorf("blocked cat after unmount: %v, %q", err, stderr.String())
	}
	if mounted(dir) {
		t.Error("still mounted")
	}
}

func TestExternalUnmount(t *testing.T) {
	testutil.NeedFUSE(t)
	ft := newFake("f.bin", 64<<10, fakeFile{n: 10})
	dir := t.TempDir()
	srv, err := Mount(dir, newFS(ft, Options{}), MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Unmount(context.Background()) })
	run(t, "fusermount3", "-u", dir)
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("serve loop still running after fusermount3 -u")
	}
	if err := srv.Err(); err != nil {
		t.Errorf("serve: %v", err)
	}
}

// A mount of several torrents: directories come and go while mounted, a magnet's
// directory is empty until its files are known, and a removed torrent's open file fails
// its next read instead of hanging.
func TestMountLibrary(t *testing.T) {
	testutil.NeedFUSE(t)
	dir := t.TempDir()
	f := New(Options{})
	a := newFake("same", 64<<10, fakeFile{n: 1 << 20})
	b := newFake("same", 64<<10, fakeFile{path: []string{"x.txt"}, n: 5})
	f.Add("same", time.Time{}).Show(a)
	srv, err := Mount(dir, f, MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Unmount(ctx)
	})
	ls := func() string {
		return strings.TrimSpace(run(t, "sh", "-c", "cd "+dir+" && find . -mindepth 1 | sort | tr '\\n' ' '"))
	}
	if got := ls(); got != "./same ./same/same" {
		t.Fatalf("one torrent: %q", got)
	}
	// A magnet's directory appears at once, empty, and may be listed without waiting.
	late := f.Add("same", time.Time{})
	if late.Name() != "same (2)" {
		t.Errorf("second torrent named %q", late.Name())
	}
	if got := ls(); got != "./same ./same (2) ./same/same" {
		t.Fatalf("with an empty directory: %q", got)
	}
	b.Provide(0)
	late.Show(b)
	if got := run(t, "cat", filepath.Join(dir, "same (2)", "x.txt")); len(got) != 5 {
		t.Errorf("file of the late torrent: %q", got)
	}
	// Removing a torrent while a child blocks reading it: the read fails, nothing hangs.
	first := func() *Torrent { f.mu.Lock(); defer f.mu.Unlock(); return f.byName["same"] }()
	cat := exec.Command("cat", filepath.Join(dir, "same", "same"))
	var stderr bytes.Buffer
	cat.Stderr = &stderr
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Process.Kill(); cat.Wait() })
	testutil.WaitFor(t, 10*time.Second, "cat to block", func() bool { return a.Blocked() > 0 })
	first.Remove()
	if err := cat.Wait(); err == nil || !strings.Contains(stderr.String(), "Input/output error") {
		t.Errorf("read of a removed torrent: %v, %q", err, stderr.String())
	}
	testutil.WaitFor(t, 10*time.Second, "the removed directory to go", func() bool { return ls() == "./same (2) ./same (2)/x.txt" })
	if err := exec.Command("stat", filepath.Join(dir, "same", "same")).Run(); err == nil {
		t.Error("stat of a removed torrent's file succeeded")
	}
	// The name is free again.
	if again := f.Add("same", time.Time{}); again.Name() != "same" {
		t.Errorf("name after removal: %q", again.Name())
	}
}
