package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/library"
	"torrentfs/metainfo"
)

// tfsLs is `torrentfs ls --json MOUNTPOINT`.
func tfsLs(t *testing.T, mnt string) []library.Status {
	t.Helper()
	out, err := exec.Command(torrentfsBin(t), "ls", "--json", mnt).Output()
	if err != nil {
		t.Fatalf("torrentfs ls: %v", err)
	}
	var st []library.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("torrentfs ls --json: %v\n%s", err, out)
	}
	return st
}

func lsNames(st []library.Status) string {
	var n []string
	for _, s := range st {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

// rootNames lists the mount's top directory from a child process.
func rootNames(t *testing.T, mnt string) string {
	t.Helper()
	return strings.Join(strings.Fields(sh(t, "ls -1 "+mnt)), ",")
}

// A library mount: three torrents from real aria2c seeders at the start, a magnet added
// with `torrentfs add`, another dropped into --watch as a .magnet file, one removed with
// `torrentfs rm` while a child holds a file of it open, and the watched one removed by
// deleting its file.
func TestMountLibraryAddRmWatch(t *testing.T) {
	testutil.NeedFUSE(t)
	testutil.Need(t, "aria2c", "python3")
	type fx struct{ torrent, data string }
	var fxs []fx
	for _, f := range []struct {
		name  string
		files []tfile
	}{
		{"alpha", []tfile{{"a/one.bin", 700 << 10}, {"two.bin", 300<<10 + 5}}},
		{"beta.bin", []tfile{{"", 1<<20 + 17}}},
		{"gamma", []tfile{{"x/y/z.bin", 64 << 10}, {"big.bin", 2 << 20}}},
		{"delta", []tfile{{"d.bin", 500 << 10}}},
		{"epsilon.bin", []tfile{{"", 333 << 10}}},
	} {
		torrent, data, _ := fixture(t, f.name, f.files...)
		fxs = append(fxs, fx{torrent, data})
	}
	var peers []string
	for i, f := range fxs[:3] {
		ip := fmt.Sprintf("127.0.0.%d", 61+i)
		_, port := testpeers.Aria2(t, f.torrent, f.data, testpeers.Aria2Opts{IP: ip, Seed: true})
		addr := ip + ":" + strconv.Itoa(port)
		testutil.WaitListening(t, addr, 10*time.Second)
		peers = append(peers, "--peer", addr)
	}
	// delta and epsilon come from one seed process of ours, found through their links.
	os.Rename(filepath.Join(fxs[4].data, "epsilon.bin"), filepath.Join(fxs[3].data, "epsilon.bin"))
	ours := startSeed(t, "127.0.0.1", fxs[3].data, nil, fxs[3].torrent, fxs[4].torrent)

	mnt := filepath.Join(t.TempDir(), "mnt")
	watch := t.TempDir()
	args := append([]string{"--cache-dir", t.TempDir(), "--watch", watch}, peers...)
	args = append(args, fxs[0].torrent, fxs[1].torrent)
	p := mountAt(t, fxs[2].torrent, mnt, args...)
	if !strings.Contains(p.Stdout(), "mounted 3 torrents at ") {
		t.Errorf("mount said: %s", p.Stdout())
	}
	same := func(name string, data string) {
		t.Helper()
		src := filepath.Join(data, name)
		if st, err := os.Stat(src); err == nil && !st.IsDir() {
			sh(t, fmt.Sprintf("cmp %q %q", src, filepath.Join(mnt, name, name)))
			return
		}
		sh(t, fmt.Sprintf("diff -r %q %q", src, filepath.Join(mnt, name)))
	}
	if got := rootNames(t, mnt); got != "alpha,beta.bin,gamma" {
		t.Fatalf("root: %s", got)
	}
	same("alpha", fxs[0].data)
	same("beta.bin", fxs[1].data)
	same("gamma", fxs[2].data)

	// A magnet added while mounted: its directory shows at once, then its files.
	out, err := exec.Command(torrentfsBin(t), "add", mnt, magnetOf(t, fxs[3].torrent, ours)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "added ") {
		t.Fatalf("torrentfs add: %v\n%s", err, out)
	}
	testutil.WaitFor(t, 20*time.Second, "delta's files", func() bool {
		return exec.Command("test", "-f", filepath.Join(mnt, "delta", "d.bin")).Run() == nil
	})
	same("delta", fxs[3].data)
	// The same torrent again is refused, and says why.
	out, err = exec.Command(torrentfsBin(t), "add", mnt, fxs[0].torrent).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already in the library") {
		t.Errorf("adding a torrent twice: %v\n%s", err, out)
	}

	// A .magnet file dropped into the watched directory.
	link := magnetOf(t, fxs[4].torrent, ours)
	if err := os.WriteFile(filepath.Join(watch, "e.magnet.tmp"), []byte("# from a browser\n"+link+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(watch, "e.magnet.tmp"), filepath.Join(watch, "e.magnet"))
	testutil.WaitFor(t, 20*time.Second, "epsilon's file", func() bool {
		return exec.Command("test", "-f", filepath.Join(mnt, "epsilon.bin", "epsilon.bin")).Run() == nil
	})
	same("epsilon.bin", fxs[3].data)
	st := tfsLs(t, mnt)
	if lsNames(st) != "alpha,beta.bin,gamma,delta,epsilon.bin" {
		t.Fatalf("ls: %s", lsNames(st))
	}
	for _, s := range st {
		if s.State != "running" || s.Progress != 1 || s.Size == 0 {
			t.Errorf("ls: %+v", s)
		}
	}

	// rm while a child holds a file open: its next read fails, it does not hang.
	holder := exec.Command("python3", "-c", `
import sys
f = open(sys.argv[1], "rb", buffering=0)
f.read(1)
print("open", flush=True)
sys.stdin.readline()
try:
    f.seek(1 << 20)
    f.read(65536)
    print("read ok", flush=True)
except OSError as e:
    print("errno", e.errno, flush=True)
`, filepath.Join(mnt, "gamma", "big.bin"))
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "open\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	out, err = exec.Command(torrentfsBin(t), "rm", mnt, "gamma").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "removed gamma") {
		t.Fatalf("torrentfs rm: %v\n%s", err, out)
	}
	stdin.Write([]byte("go\n"))
	rest, _ := io.ReadAll(stdout)
	if strings.TrimSpace(string(rest)) != "errno 5" {
		t.Errorf("read of a removed torrent's open file: %q, want EIO", rest)
	}
	if got := rootNames(t, mnt); got != "alpha,beta.bin,delta,epsilon.bin" {
		t.Errorf("root after rm: %s", got)
	}
	// Deleting the .magnet file removes its torrent.
	os.Remove(filepath.Join(watch, "e.magnet"))
	testutil.WaitFor(t, 10*time.Second, "epsilon to go", func() bool { return rootNames(t, mnt) == "alpha,beta.bin,delta" })
	if got := lsNames(tfsLs(t, mnt)); got != "alpha,beta.bin,delta" {
		t.Errorf("ls at the end: %s", got)
	}
	out, err = exec.Command(torrentfsBin(t), "rm", mnt, "nope").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no torrent named "nope"`) {
		t.Errorf("rm of nothing: %v\n%s", err, out)
	}
}

// A hundred small torrents in one mount, seeded by one of our seed processes: the root
// lists them, every file reads back, and the idle process stays small.
func TestMountHundredTorrents(t *testing.T) {
	testutil.NeedFUSE(t)
	const n = 100
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	var torrents []string
	for i := range n {
		name := fmt.Sprintf("t%03d.bin", i)
		b := []byte(strings.Repeat(name, 1000+i))
		if err := os.WriteFile(filepath.Join(data, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, raw, err := metainfo.Create(context.Background(), filepath.Join(data, name), metainfo.CreateOptions{PieceLength: 16 << 10})
		if err != nil {
			t.Fatal(err)
		}
		tp := filepath.Join(dir, name+".torrent")
		os.WriteFile(tp, raw, 0o644)
		torrents = append(torrents, tp)
	}
	peer := startSeed(t, "127.0.0.1", data, nil, torrents...)
	mnt := filepath.Join(t.TempDir(), "mnt")
	args := append([]string{"--cache-dir", t.TempDir(), "--peer", peer}, torrents[1:]...)
	p := mountAt(t, torrents[0], mnt, args...)
	if got := len(strings.Fields(sh(t, "ls "+mnt))); got != n {
		t.Fatalf("the root lists %d torrents, want %d", got, n)
	}
	testutil.WaitFor(t, 60*time.Second, "every torrent complete", func() bool {
		for _, s := range tfsLs(t, mnt) {
			if s.Progress != 1 {
				return false
			}
		}
		return true
	})
	sh(t, fmt.Sprintf(`cd %q && for f in *; do cmp "$f" %q/"$f"/"$f" || exit 1; done`, data, mnt))
	// Idle: no reader, nothing left to fetch.
	time.Sleep(2 * time.Second)
	rss := procRSS(t, p.Cmd.Process.Pid)
	t.Logf("%d idle torrents: RSS %d MiB", n, rss>>20)
	if rss > 100<<20 {
		t.Errorf("%d idle torrents take %d MiB of RSS, want under 100", n, rss>>20)
	}
}

// procRSS is a process's resident set size in bytes.
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
