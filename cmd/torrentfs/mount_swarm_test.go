package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/tracker"
)

// Acceptance tests of the mount against real third-party seeders (aria2c, found through
// opentracker or given with --peer) and a real downloader. Run them under the workplace's
// netjail (scripts/lib.sh finds it):
//   netjail go test -race -count=1 -run 'TestMountSwarm|TestMountPriority|TestMountSeek|TestMountFFmpeg|TestMountUploads' ./cmd/torrentfs/
//
// Ordering claims ("the far piece came before the old window") are checked against the
// engine's own record: run with --log-level debug, the cache logs one "piece verified"
// line per piece, in the order pieces completed. Wall-clock time is never asserted.

// mountSwarmFiles is a multi-file torrent: nested directories, an empty file, files smaller
// than a piece and pieces spanning several files.
var mountSwarmFiles = map[string]int64{
	"readme.txt":      1000,
	"a/one.bin":       3<<20 + 12345,
	"a/b/two.bin":     700<<10 + 3,
	"a/b/c/empty.dat": 0,
	"b/three.bin":     4<<20 + 77,
	"b/small.bin":     5,
	"z.bin":           1<<20 - 1,
}

// mountTorrentFiles writes files (deterministic contents) under a new src/name and makes a
// .torrent of them announcing to trackers; it returns the torrent and src.
func mountTorrentFiles(t *testing.T, name string, files map[string]int64, pieceLen int64, trackers ...string) (*metainfo.MetaInfo, string, string) {
	t.Helper()
	src := t.TempDir()
	testpeers.WriteFiles(t, filepath.Join(src, name), files, 7)
	mi, torrent := mountTorrentOf(t, filepath.Join(src, name), pieceLen, trackers...)
	return mi, torrent, src
}

// mountTorrentOf makes a .torrent of root; the info-hash does not depend on the trackers,
// so a test can learn it first and then start a tracker that whitelists it.
func mountTorrentOf(t *testing.T, root string, pieceLen int64, trackers ...string) (*metainfo.MetaInfo, string) {
	t.Helper()
	var tiers [][]string
	for _, u := range trackers {
		tiers = append(tiers, []string{u})
	}
	mi, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{Announce: tiers, PieceLength: pieceLen, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(root)+".torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, path
}

// mountTrackedTorrent is mountTorrentFiles announcing to a fresh opentracker; it returns the
// tracker's HTTP announce URL too.
func mountTrackedTorrent(t *testing.T, name string, files map[string]int64, pieceLen int64) (*metainfo.MetaInfo, string, string, string) {
	t.Helper()
	mi0, _, src := mountTorrentFiles(t, name, files, pieceLen)
	announce, _ := testpeers.Opentracker(t, mi0.InfoHash)
	mi, torrent := mountTorrentOf(t, filepath.Join(src, name), pieceLen, announce)
	if mi.InfoHash != mi0.InfoHash {
		t.Fatal("info-hash depends on the tracker")
	}
	return mi, torrent, src, announce
}

// mountAria2Seeders starts one rate-limited aria2c seeder per IP and returns their addresses.
func mountAria2Seeders(t *testing.T, torrent, src, limit string, ips ...string) ([]*testutil.Proc, []string) {
	t.Helper()
	var procs []*testutil.Proc
	var addrs []string
	for _, ip := range ips {
		p, port := testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: ip, UploadLimit: limit, Seed: true})
		addr := ip + ":" + strconv.Itoa(port)
		testutil.WaitListening(t, addr, 10*time.Second)
		procs = append(procs, p)
		addrs = append(addrs, addr)
	}
	return procs, addrs
}

// mountWaitSeeders waits until the tracker counts n seeders, so a mount announcing next learns
// them at once instead of at its next announce, half a minute later.
func mountWaitSeeders(t *testing.T, announce string, ih metainfo.Hash, n int) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("the tracker to count %d seeders", n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := tracker.Scrape(ctx, announce, [][20]byte{ih})
		return err == nil && st[ih].Complete >= n
	})
}

func mountPeerFlags(addrs []string) []string {
	var a []string
	for _, addr := range addrs {
		a = append(a, "--peer", addr)
	}
	return a
}

var mountVerifiedRE = regexp.MustCompile(`msg="piece verified"[^\n]*\bpiece=(\d+)`)

// mountVerified is the mount's record (at --log-level debug) of the pieces it completed,
// in order.
func mountVerified(m *testutil.Proc) []int {
	var ps []int
	for _, sub := range mountVerifiedRE.FindAllStringSubmatch(m.Stderr(), -1) {
		n, _ := strconv.Atoi(sub[1])
		ps = append(ps, n)
	}
	return ps
}

// mountWaitReader waits for a reader child of mount m; a reader still running after d is
// reported with the mount's diagnosis.
func mountWaitReader(t *testing.T, p *testutil.Proc, m *testutil.Proc, d time.Duration) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Err()
	case <-time.After(d):
		t.Fatalf("reader %v still running after %v (blocked in the mount?); stderr:\n%s\n%s", p.Cmd.Args, d, p.Stderr(), mountDiagnosis(m))
		return nil
	}
}

var (
	mountNotPresentRE = regexp.MustCompile(`piece (\d+): piece not present`)
	mountEventRE      = regexp.MustCompile(`msg="(piece verified|evicted piece)"[^\n]*\bpiece=(\d+)`)
)

// mountDiagnosis explains a failed read from the mount's log (it needs --log-level debug):
// its warnings and errors, and for each piece a read found missing, the piece's last
// events in the cache.
func mountDiagnosis(m *testutil.Proc) string {
	log := m.Stderr()
	var b strings.Builder
	b.WriteString("the mount's warnings and errors:\n")
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=warn") || strings.Contains(l, "level=error") {
			b.WriteString(l + "\n")
		}
	}
	events := mountEventRE.FindAllStringSubmatch(log, -1)
	seen := map[string]bool{}
	for _, sub := range mountNotPresentRE.FindAllStringSubmatch(log, -1) {
		piece := sub[1]
		if seen[piece] {
			continue
		}
		seen[piece] = true
		var last []string
		for _, ev := range events {
			if ev[2] == piece {
				last = append(last, ev[1])
			}
		}
		last = last[max(0, len(last)-4):]
		fmt.Fprintf(&b, "piece %s's last cache events: %s\n", piece, strings.Join(last, ", "))
		if len(last) > 0 && last[len(last)-1] == "evicted piece" {
			fmt.Fprintf(&b, "ENGINE BUG: piece %s was evicted by the bounded cache and never fetched again although "+
				"a read was waiting for it: the loop's ledger and its picker disagree about the piece "+
				"(swarm/torrent_cache.go: admit, evict and the picker's gate).\n", piece)
		}
	}
	return b.String()
}

func mountPieceSet(ps []int) map[int]bool {
	s := map[int]bool{}
	for _, p := range ps {
		s[p] = true
	}
	return s
}

var (
	mountRandreadOnce sync.Once
	mountRandreadPath string
	mountRandreadErr  error
)

// mountRandreadBin builds testdata/randread, the child that makes many checked reads.
func mountRandreadBin(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(torrentfsBin(t)) // removed by TestMain
	mountRandreadOnce.Do(func() {
		mountRandreadPath = filepath.Join(dir, "randread")
		out, err := exec.Command("go", "build", "-o", mountRandreadPath, "./testdata/randread").CombinedOutput()
		if err != nil {
			mountRandreadErr = fmt.Errorf("go build randread: %v\n%s", err, out)
		}
	})
	if mountRandreadErr != nil {
		t.Fatal(mountRandreadErr)
	}
	return mountRandreadPath
}

// mountScriptReader is a randread child in script mode: one open handle on one file of the
// mount, reading where the test says, when the test says.
type mountScriptReader struct {
	in     io.WriteCloser
	lines  chan string
	stderr *testutil.Buffer
}

func startMountScriptReader(t *testing.T, mnt, orig, name string) *mountScriptReader {
	t.Helper()
	cmd := exec.Command(mountRandreadBin(t), "-mount", mnt, "-orig", orig, "-stdin", name)
	s := &mountScriptReader{lines: make(chan string, 16), stderr: &testutil.Buffer{}}
	cmd.Stderr = s.stderr
	var err error
	if s.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		s.in.Close()
		cmd.Process.Kill()
		// Drain so the scanner goroutine ends even if nobody read its last lines.
		for range s.lines {
		}
		<-scanned
		cmd.Wait()
	})
	return s
}

// read asks for n bytes at off and waits for the child's verdict.
func (s *mountScriptReader) read(t *testing.T, off, n int64, d time.Duration) {
	t.Helper()
	if _, err := fmt.Fprintf(s.in, "%d %d\n", off, n); err != nil {
		t.Fatalf("reader child: %v %s", err, s.stderr)
	}
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatalf("reader child exited: %s", s.stderr)
		}
		if l != "ok" {
			t.Fatalf("read %d bytes at %d: %s", n, off, l)
		}
	case <-time.After(d):
		t.Fatalf("read %d bytes at %d not answered within %v", n, off, d)
	}
}

// TestMountSwarmRealSeeders mounts a multi-file torrent whose only sources are two
// rate-limited aria2c seeders found through opentracker. The random reads get a mount of
// their own: the kernel keeps a mount's pages cached, so after the cmp they would never
// reach the engine; the second mount starts cold, with a bounded cache.
func TestMountSwarmRealSeeders(t *testing.T) {
	testutil.NeedFUSE(t)
	mi, torrent, src, announce := mountTrackedTorrent(t, "swarm", mountSwarmFiles, 256<<10)
	mountAria2Seeders(t, torrent, src, "4M", "127.0.0.11", "127.0.0.12")
	mountWaitSeeders(t, announce, mi.InfoHash, 2)
	var names []string
	for name := range mountSwarmFiles {
		names = append(names, filepath.Join("swarm", name))
	}
	sort.Strings(names)
	// The torrent's own tracker is the only way to the seeders.
	mount := func(args ...string) (*testutil.Proc, string) {
		mnt := filepath.Join(t.TempDir(), "m")
		return mountAt(t, torrent, mnt, append([]string{"--no-trackers=false", "--cache-dir", t.TempDir()}, args...)...), mnt
	}
	stop := func(m *testutil.Proc) int64 {
		t.Helper()
		m.Cmd.Process.Signal(syscall.SIGTERM)
		if err := m.Wait(t, 5*time.Second); err != nil {
			t.Fatalf("mount: %v\n%s", err, m.Stderr())
		}
		return downloaded(t, m)
	}

	m, mnt := mount()
	for _, name := range names {
		if out, err := exec.Command("cmp", filepath.Join(mnt, name), filepath.Join(src, name)).CombinedOutput(); err != nil {
			t.Fatalf("cmp %s: %v %s", name, err, out)
		}
	}
	if got := stop(m); got < mi.Info.TotalLength {
		t.Errorf("first mount downloaded %d bytes, less than the torrent's %d", got, mi.Info.TotalLength)
	}

	m, mnt = mount("--cache-size", "2M", "--log-level", "debug")
	bin := mountRandreadBin(t)
	randread := func(seed, n int) *testutil.Proc {
		args := []string{"-mount", mnt, "-orig", src, "-seed", strconv.Itoa(seed), "-n", strconv.Itoa(n)}
		return testutil.Start(t, bin, append(args, names...)...)
	}
	// Two readers at once on the cold mount, each with its own handles and offsets.
	a, b := randread(2, 300), randread(3, 300)
	for _, p := range []*testutil.Proc{a, b} {
		if err := mountWaitReader(t, p, m, 20*time.Second); err != nil {
			t.Fatalf("concurrent random reads: %v\n%s\n%s", err, p.Stderr(), mountDiagnosis(m))
		}
	}
	r := randread(1, 1000)
	if err := mountWaitReader(t, r, m, 20*time.Second); err != nil {
		t.Fatalf("1000 random reads: %v\n%s\n%s", err, r.Stderr(), mountDiagnosis(m))
	}
	got := stop(m)
	if got < mi.Info.TotalLength/2 {
		t.Errorf("the random reads downloaded %d bytes of a %d-byte torrent; most reads never reached the engine", got, mi.Info.TotalLength)
	}
	t.Logf("random reads through a 2 MiB cache downloaded %d bytes of a %d-byte torrent", got, mi.Info.TotalLength)
}

// TestMountFFmpegFaststart decodes an MP4 whose index (moov) comes first, as
// -movflags +faststart writes it for streaming, from a mount fed by one throttled aria2c
// seeder: the demuxer reads the index, then the frames in order as they arrive.
func TestMountFFmpegFaststart(t *testing.T) {
	testutil.NeedFUSE(t)
	testutil.Need(t, "ffmpeg")
	src := t.TempDir()
	orig := filepath.Join(src, "clip.mp4")
	gen := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "6",
		"-vf", "noise=alls=40:allf=t", "-c:v", "mpeg4", "-q:v", "6", "-movflags", "+faststart", orig)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	if moov, mdat := bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat")); moov < 0 || mdat < 0 || moov > mdat {
		t.Fatalf("clip has moov at %d and mdat at %d; want the index first", moov, mdat)
	}
	mi, torrent := mountTorrentOf(t, orig, 256<<10)
	_, addrs := mountAria2Seeders(t, torrent, src, "2M", "127.0.0.11")
	decode := func(path string) string {
		t.Helper()
		p := testutil.Start(t, "ffmpeg", "-v", "error", "-i", path, "-f", "framemd5", "-")
		if err := p.Wait(t, 25*time.Second); err != nil {
			t.Fatalf("decode %s: %v\n%s", path, err, p.Stderr())
		}
		return p.Stdout()
	}
	// The original first, before the mount starts downloading: on a busy machine its
	// decode takes long enough for the whole clip to arrive.
	want := decode(orig)
	mnt := filepath.Join(t.TempDir(), "m")
	args := append([]string{"--log-level", "debug", "--cache-dir", t.TempDir()}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)
	if n := len(mountPieceSet(mountVerified(m))); n == mi.Info.NumPieces() {
		t.Fatal("the mount had the whole clip before decoding began; the test would not stream")
	}
	got := decode(filepath.Join(mnt, "clip.mp4", "clip.mp4"))
	if got != want {
		t.Errorf("frame checksums differ between the mount and the original:\n%s", firstDiff(got, want))
	}
	if strings.Count(want, "\n") < 100 {
		t.Errorf("only %d framemd5 lines for a 6 s clip:\n%s", strings.Count(want, "\n"), want)
	}
}

// firstDiff shows the first line where two outputs differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, a, b)
		}
	}
	return "no difference"
}

// TestMountUploadsWhileMounted makes the mount the only complete source of a torrent: it
// downloads everything (--cache-size 0) from an aria2c seeder, the seeder goes away, and
// an aria2c downloader that learns peers from the tracker gets the whole torrent from the
// mount. The mount listens on a loopback address of its own, not the one its packets would
// leave from by default: it must announce (and dial) from that address, or the tracker
// hands the downloader an address nobody listens on.
func TestMountUploadsWhileMounted(t *testing.T) {
	testutil.NeedFUSE(t)
	mi, torrent, src, announce := mountTrackedTorrent(t, "up", mountSwarmFiles, 256<<10)
	seeders, _ := mountAria2Seeders(t, torrent, src, "", "127.0.0.11")
	mountWaitSeeders(t, announce, mi.InfoHash, 1)
	mnt := filepath.Join(t.TempDir(), "m")
	m := mountAt(t, torrent, mnt, "--no-trackers=false", "--listen", "127.0.0.50:0", "--log-level", "debug", "--cache-dir", t.TempDir(), "--cache-size", "0")
	testutil.WaitFor(t, 20*time.Second, "the mount to complete the torrent", func() bool {
		if m.Exited() {
			t.Fatalf("mount exited: %v\n%s", m.Err(), m.Stderr())
		}
		return len(mountPieceSet(mountVerified(m))) == mi.Info.NumPieces()
	})
	// What a user would look at: every file says 100% through the progress xattr.
	var paths []string
	for name := range mountSwarmFiles {
		paths = append(paths, filepath.Join(mnt, "up", name))
	}
	sort.Strings(paths)
	out, err := exec.Command("python3", append([]string{"-c",
		"import os, sys\nfor p in sys.argv[1:]: print(os.getxattr(p, 'user.torrentfs.progress').decode())"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("read progress xattrs: %v\n%s", err, out)
	}
	if want := strings.Repeat("100.0%\n", len(paths)); string(out) != want {
		t.Fatalf("progress of %v:\n%s", paths, out)
	}
	seeders[0].Stop()

	dst := t.TempDir()
	dl, _ := testpeers.Aria2(t, torrent, dst, testpeers.Aria2Opts{IP: "127.0.0.21"})
	if err := dl.Wait(t, 25*time.Second); err != nil {
		t.Fatalf("aria2c downloading from the mount: %v", err)
	}
	testpeers.SameTree(t, filepath.Join(src, "up"), filepath.Join(dst, "up"))

	m.Cmd.Process.Signal(syscall.SIGTERM)
	if err := m.Wait(t, 5*time.Second); err != nil {
		t.Fatalf("mount: %v\n%s", err, m.Stderr())
	}
	up := uploadedField.FindStringSubmatch(m.Stderr())
	if up == nil {
		t.Fatalf("no uploaded= in the mount's log")
	}
	if n, _ := strconv.ParseInt(up[1], 10, 64); n < mi.Info.TotalLength {
		t.Errorf("mount uploaded %d bytes, want the whole torrent (%d)", n, mi.Info.TotalLength)
	}
}

var uploadedField = regexp.MustCompile(`uploaded=(\d+)`)
