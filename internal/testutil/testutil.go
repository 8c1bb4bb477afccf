// Package testutil is the one home of the helpers every package's tests share: waiting for a
// condition with a deadline, checking that a program or FUSE is there, running a child
// process that is killed when the test ends, and a logger that writes through the test.
// Only tests import it, and it imports nothing of this module, so any package's tests may
// use it without bending the import direction.
//
// It is not internal/testpeers: that package starts third-party BitTorrent programs and
// makes test data, and builds on this one; a FUSE check or a logger is no peer, and the
// fs, reader and cache tests that need them have no business with aria2c.
package testutil

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Need fails the test when a program is missing, or skips it when TORRENTFS_ALLOW_SKIP=1:
// CI installs everything (scripts/test), so a missing program there is a failure.
func Need(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("TORRENTFS_ALLOW_SKIP") == "1" {
				t.Skipf("%s is not installed", p)
			}
			t.Fatalf("%s is not installed (scripts/test installs it)", p)
		}
	}
}

// NeedFUSE skips the test when this machine cannot mount: no /dev/fuse (a container
// without the device) or no fusermount3.
func NeedFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3")
	}
}

// WaitFor polls cond until it holds or d passes; it fails the test with msg then. It polls
// often at first, so a condition that is nearly true costs a test little, and backs off to
// 20 ms for the long waits on other programs.
func WaitFor(t testing.TB, d time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", d, msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// WaitListening waits until something accepts TCP connections on addr.
func WaitListening(t testing.TB, addr string, d time.Duration) {
	t.Helper()
	WaitFor(t, d, "nothing listens on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// SmallDisk mounts a tmpfs of the given size ("40m") on a new directory and unmounts it
// when the test ends: a disk that fills up, for full-disk tests. It skips where mount(2)
// is not allowed (not root).
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a %s tmpfs here: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// GrowDisk remounts a SmallDisk with a new size, as a user freeing space would.
func GrowDisk(t testing.TB, dir, size string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size="+size); err != nil {
		t.Fatalf("grow the tmpfs at %s to %s: %v", dir, size, err)
	}
}
