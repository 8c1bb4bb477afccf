package main

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/metainfo"
)

// runCmd runs the command line in-process and returns what it printed and its exit code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	saved := cmdStdout
	cmdStdout = &out
	defer func() { cmdStdout = saved }()
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// writeTree writes files (slash-separated path -> length) of pseudo-random bytes under root;
// the key "" makes root itself a file.
func writeTree(t *testing.T, root string, files map[string]int) {
	t.Helper()
	sizes := make(map[string]int64, len(files))
	for p, n := range files {
		sizes[p] = int64(n)
	}
	testpeers.WriteFiles(t, root, sizes, 42)
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (scripts/test installs it)", name)
	}
}

var transmissionHashRE = regexp.MustCompile(`(?m)^\s*Hash(?: v1)?:\s+([0-9a-fA-F]{40})\s*$`)

// transmissionHash is the info-hash transmission-show reports for a .torrent file.
func transmissionHash(t *testing.T, torrent string) string {
	t.Helper()
	out, err := exec.Command("transmission-show", torrent).CombinedOutput()
	if err != nil {
		t.Fatalf("transmission-show %s: %v\n%s", torrent, err, out)
	}
	m := transmissionHashRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no Hash line in transmission-show output:\n%s", out)
	}
	return strings.ToLower(string(m[1]))
}

// verifyPieces hashes the data itself and compares with the torrent's piece hashes.
func verifyPieces(t *testing.T, m *metainfo.MetaInfo, root string) {
	t.Helper()
	var stream []byte
	for _, f := range m.Info.Files {
		p := root
		if !m.Info.Single {
			p = filepath.Join(append([]string{root}, f.Path...)...)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	if int64(len(stream)) != m.Info.TotalLength {
		t.Fatalf("data is %d bytes, torrent says %d", len(stream), m.Info.TotalLength)
	}
	pl := int(m.Info.PieceLength)
	for i := 0; i*pl < len(stream); i++ {
		if metainfo.Hash(sha1.Sum(stream[i*pl:min(len(stream), (i+1)*pl)])) != m.Info.Pieces[i] {
			t.Fatalf("piece %d does not match the data", i)
		}
	}
}

func TestCreateInterop(t *testing.T) {
	needTool(t, "transmission-show")
	needTool(t, "mktorrent")
	needTool(t, "transmission-create")
	tests := []struct {
		name      string
		files     map[string]int
		pieceSize int64
	}{
		{"single file", map[string]int{"": 300_000}, 32 << 10},
		{"single file, 16 KiB pieces", map[string]int{"": 100_000}, 16 << 10},
		{"single file, pieces fit exactly", map[string]int{"": 256 << 10}, 64 << 10},
		{"nested dirs", map[string]int{
			"a/b/c/deep.bin": 90_000, "a/top": 1234, "z/y/x": 50_000, "m.txt": 77,
		}, 32 << 10},
		{"zero-byte file among others", map[string]int{
			"first": 40_000, "empty": 0, "sub/empty2": 0, "zlast": 40_000,
		}, 32 << 10},
		{"short last piece spanning files", map[string]int{"a": 100_000, "b": 100_001}, 64 << 10},
		{"utf-8 names", map[string]int{"été/日本.txt": 60_000, "été/ö ü": 10, "Ελλάδα": 5_000}, 16 << 10},
		{"16 KiB pieces, many files", map[string]int{
			"1": 16 << 10, "2": 1, "3": 16<<10 - 1, "4/5": 33_000, "4/6": 16 << 10,
		}, 16 << 10},
		{"1 MiB pieces", map[string]int{"big": 3<<20 + 5, "small": 10}, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "data")
			writeTree(t, root, tt.files)
			size := strconv.FormatInt(tt.pieceSize>>10, 10) + "K"

			ours := filepath.Join(dir, "ours.torrent")
			stdout, stderr, code := runCmd(t, "create", "--no-date", "--piece-size", size, "-o", ours, root)
			if code != 0 {
				t.Fatalf("create exited %d: %s", code, stderr)
			}
			m, err := metainfo.Load(ours)
			if err != nil {
				t.Fatal(err)
			}
			want := transmissionHash(t, ours)
			if m.InfoHash.HexString() != want {
				t.Errorf("our torrent: info-hash %s, transmission-show says %s", m.InfoHash, want)
			}
			if !strings.Contains(stdout, "info-hash: "+want) || !strings.Contains(stdout, "magnet:?xt=urn:btih:"+want) {
				t.Errorf("create did not print the info-hash and magnet:\n%s", stdout)
			}
			if m.Info.PieceLength != tt.pieceSize {
				t.Errorf("piece length %d, want %d", m.Info.PieceLength, tt.pieceSize)
			}
			verifyPieces(t, m, root)

			// mktorrent cannot go below 32 KiB pieces. It orders files the way we do, so with
			// no date its info dictionary is byte for byte ours.
			if tt.pieceSize >= 32<<10 {
				mk := filepath.Join(dir, "mk.torrent")
				cmd := exec.Command("mktorrent", "-d", "-l", strconv.Itoa(bits.TrailingZeros64(uint64(tt.pieceSize))), "-o", mk, root)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("mktorrent: %v\n%s", err, out)
				}
				mm, err := metainfo.Load(mk)
				if err != nil {
					t.Fatalf("load mktorrent's torrent: %v", err)
				}
				if got, want := mm.InfoHash.HexString(), transmissionHash(t, mk); got != want {
					t.Errorf("mktorrent's torrent: we compute %s, transmission-show %s", got, want)
				}
				if mm.InfoHash != m.InfoHash {
					t.Errorf("mktorrent made %s of the same data, we made %s", mm.InfoHash, m.InfoHash)
				}
			}

			tc := filepath.Join(dir, "tc.torrent")
			cmd := exec.Command("transmission-create", "-s", strconv.FormatInt(tt.pieceSize>>10, 10), "-o", tc, root)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("transmission-create: %v\n%s", err, out)
			}
			tm, err := metainfo.Load(tc)
			if err != nil {
				t.Fatalf("load transmission-create's torrent: %v", err)
			}
			if got, want := tm.InfoHash.HexString(), transmissionHash(t, tc); got != want {
				t.Errorf("transmission-create's torrent: we compute %s, transmission-show %s", got, want)
			}
			verifyPieces(t, tm, root)
		})
	}
}

func TestCreateCLI(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeTree(t, filepath.Join(dir, "movie"), map[string]int{"part1.mkv": 70_000, "part2.mkv": 30_000})

	// Default output name, in the current directory.
	_, stderr, code := runCmd(t, "create", "-t", "http://a/announce", "-t", "udp://b:1,http://c/x",
		"--web-seed", "http://w/1/", "--web-seed", "http://w/2/", "--private", "--comment", "hello", "movie")
	if code != 0 {
		t.Fatalf("create exited %d: %s", code, stderr)
	}
	m, err := metainfo.Load(filepath.Join(dir, "movie.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Announce != "http://a/announce" || fmt.Sprint(m.AnnounceList) != "[[http://a/announce] [udp://b:1 http://c/x]]" {
		t.Errorf("announce %q, announce-list %v", m.Announce, m.AnnounceList)
	}
	if !m.Info.Private || m.Comment != "hello" || fmt.Sprint(m.URLList) != "[http://w/1/ http://w/2/]" {
		t.Errorf("private %v comment %q url-list %v", m.Info.Private, m.Comment, m.URLList)
	}
	if m.CreatedBy != "torrentfs" || time.Since(time.Unix(m.CreationDate, 0)).Abs() > time.Hour {
		t.Errorf("created by %q on %d", m.CreatedBy, m.CreationDate)
	}
	if m.Info.PieceLength != metainfo.AutoPieceLength(100_000) {
		t.Errorf("piece length %d", m.Info.PieceLength)
	}
	if stderr != "" {
		t.Errorf("stderr is not a terminal, yet create wrote to it: %q", stderr)
	}

	// An existing file is kept unless -f.
	before, _ := os.ReadFile("movie.torrent")
	if _, stderr, code := runCmd(t, "create", "--no-date", "movie"); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("create over an existing file: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile("movie.torrent"); !bytes.Equal(before, after) {
		t.Error("existing torrent was changed without -f")
	}
	if _, stderr, code := runCmd(t, "create", "-f", "--no-date", "movie"); code != 0 {
		t.Fatalf("create -f: exit %d: %s", code, stderr)
	}
	m2, err := metainfo.Load("movie.torrent")
	if err != nil {
		t.Fatal(err)
	}
	if m2.CreationDate != 0 || m2.Announce != "" || m2.Info.Private {
		t.Errorf("-f did not replace the file: %+v", m2)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// -o - puts the torrent alone on stdout.
	stdout, stderr, code := runCmd(t, "create", "--no-date", "-o", "-", "movie")
	if code != 0 {
		t.Fatalf("create -o -: exit %d: %s", code, stderr)
	}
	m3, err := metainfo.Parse([]byte(stdout))
	if err != nil {
		t.Fatalf("stdout is not a torrent: %v", err)
	}
	if m3.InfoHash != m2.InfoHash || !strings.Contains(stderr, m3.InfoHash.HexString()) {
		t.Errorf("-o -: info-hash %s, want %s; stderr %q", m3.InfoHash, m2.InfoHash, stderr)
	}
}

func TestCreateExitCodes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "f"), map[string]int{"": 1000})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.torrent")
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"help", []string{"create", "--help"}, 0, "usage: torrentfs create"},
		{"help command", []string{"help", "create"}, 0, "-piece-size SIZE"},
		{"no path", []string{"create"}, 2, "want exactly one PATH"},
		{"two paths", []string{"create", "a", "b"}, 2, "want exactly one PATH"},
		{"unknown flag", []string{"create", "--bogus", "f"}, 2, "bogus"},
		{"piece size not a power of two", []string{"create", "--piece-size", "48K", "-o", out, filepath.Join(dir, "f")}, 2, "power of two"},
		{"piece size too small", []string{"create", "--piece-size", "8192", "-o", out, filepath.Join(dir, "f")}, 2, "16 KiB"},
		{"piece size not a size", []string{"create", "--piece-size", "big", "f"}, 2, "not a size"},
		{"missing path", []string{"create", "-o", out, filepath.Join(dir, "nope")}, 1, "no such file"},
		{"empty directory", []string{"create", "-o", out, filepath.Join(dir, "empty")}, 1, "no files"},
		{"ok", []string{"create", "--piece-size", "16384", "-o", out, filepath.Join(dir, "f")}, 0, "info-hash: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d; output lacks %q?\nstdout: %s\nstderr: %s", code, tt.code, tt.want, stdout, stderr)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"262144", 262144, true},
		{"256K", 256 << 10, true},
		{"256k", 256 << 10, true},
		{"256KiB", 256 << 10, true},
		{"256KB", 256 << 10, true},
		{"4M", 4 << 20, true},
		{"4MiB", 4 << 20, true},
		{"1G", 1 << 30, true},
		{"16384B", 16384, true},
		{"", 0, false},
		{"K", 0, false},
		{"-1K", 0, false},
		{"1.5M", 0, false},
		{"4T", 0, false},
		{"99999999999999999999", 0, false},
		{"9999999999999G", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{16 << 10, "16.0 KiB"}, {1 << 30, "1.0 GiB"}, {5 << 40, "5.0 TiB"}, {3 << 50, "3.0 PiB"},
		{1 << 62, "4096.0 PiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, total int64
		elapsed     time.Duration
		width       int
		want        string
	}{
		{0, 100 << 20, 0, 60, "hashing [>         ]   0%        0 B/100.0 MiB             "},
		{50 << 20, 100 << 20, 2 * time.Second, 80,
			"hashing [" + strings.Repeat("=", 15) + ">" + strings.Repeat(" ", 14) + "]  50%   50.0 MiB/100.0 MiB   25.0 MiB/s"},
		{100 << 20, 100 << 20, time.Second, 60, "hashing [==========] 100%  100.0 MiB/100.0 MiB  100.0 MiB/s"},
		{1, 2, 0, 30, "hashing  50%        1 B/2 B"}, // too narrow for a bar
		{1, 2, 0, 20, "hashing  50%       "},
		{5, 0, 0, 60, "hashing [>" + strings.Repeat(" ", 15) + "]   0%        5 B/0 B             "}, // unknown total
	}
	for _, tt := range tests {
		got := progressLine("hashing", tt.done, tt.total, tt.elapsed, tt.width)
		if got != tt.want {
			t.Errorf("progressLine(%d/%d, width %d) =\n%q, want\n%q", tt.done, tt.total, tt.width, got, tt.want)
		}
		if len(got) >= tt.width {
			t.Errorf("line %q is %d columns, not narrower than %d", got, len(got), tt.width)
		}
	}
	// The line keeps one length through a run, so the bar does not jump about.
	const total = 3 << 30
	want := len(progressLine("hashing", 0, total, 0, 100))
	for done := int64(0); done <= total; done += 97 << 20 {
		for _, el := range []time.Duration{0, time.Second, time.Hour} {
			if l := progressLine("hashing", done, total, el, 100); len(l) != want {
				t.Fatalf("%d bytes after %v: line %q is %d long, want %d", done, el, l, len(l), want)
			}
		}
	}
}

func TestProgressSilentWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "x", 100)
	p.Set(10)
	p.Add(90)
	p.Done()
	p.Done()
	if buf.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal", buf.String())
	}
	if p.done != 100 {
		t.Errorf("counted %d, want 100", p.done)
	}
	// A regular file is not a terminal either.
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p = newProgress(f, "x", 100)
	p.Set(100)
	p.Done()
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", st.Size())
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"262144", "256K", "4MiB", "1g", "", "K", "-1", "9999999999999G", "1.5M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if plain, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64); perr == nil && plain != n {
			t.Fatalf("parseSize(%q) = %d, want %d", s, n, plain)
		}
	})
}
