package metainfo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"torrentfs/internal/testpeers"
)

func TestAutoPieceLength(t *testing.T) {
	const KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
	tests := []struct {
		total int64
		want  int64
	}{
		{1, 16 * KiB},
		{20 * MiB, 16 * KiB},        // 1280 pieces
		{40 * MiB, 32 * KiB},        // 1280
		{100 * MiB, 64 * KiB},       // 1600
		{700 * MiB, 512 * KiB},      // 1400
		{1 * GiB, 512 * KiB},        // 2048: 1 GiB/1500 is 699 KiB, nearer 512 than 1024 by ratio
		{1536 * MiB, 1 * MiB},       // 1536
		{4 * GiB, 2 * MiB},          // 2048
		{8 * GiB, 4 * MiB},          // 2048
		{50 * GiB, 16 * MiB},        // 3200, clamped
		{2000 * GiB, 16 * MiB},      // clamped
		{1500 * 16 * KiB, 16 * KiB}, // exactly on target
	}
	for _, tt := range tests {
		if got := AutoPieceLength(tt.total); got != tt.want {
			t.Errorf("AutoPieceLength(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
	// Whatever the size, the count stays near the target unless clamped.
	for total := int64(1500 * 16 * KiB); total < 1500*16*MiB; total = total*5/4 + 12345 {
		p := AutoPieceLength(total)
		n := (total + p - 1) / p
		if n < 1000 || n > 2200 {
			t.Errorf("AutoPieceLength(%d) = %d gives %d pieces", total, p, n)
		}
		if err := CheckCreatePieceLength(p); err != nil {
			t.Errorf("AutoPieceLength(%d) = %d: %v", total, p, err)
		}
	}
}

func TestCheckCreatePieceLength(t *testing.T) {
	for _, n := range []int64{16 << 10, 32 << 10, 1 << 20, 16 << 20, MaxPieceLength} {
		if err := CheckCreatePieceLength(n); err != nil {
			t.Errorf("%d: %v", n, err)
		}
	}
	for _, n := range []int64{-1, 0, 1, 8 << 10, 48 << 10, 1<<20 + 1, 2 * MaxPieceLength} {
		if err := CheckCreatePieceLength(n); err == nil {
			t.Errorf("%d: accepted", n)
		}
	}
}

// tree writes files (path -> length, "/"-separated) with pseudo-random content under dir.
func tree(t *testing.T, dir string, files map[string]int) {
	t.Helper()
	sizes := make(map[string]int64, len(files))
	for p, n := range files {
		sizes[p] = int64(n)
	}
	testpeers.WriteFiles(t, dir, sizes, 7)
}

// checkCreated checks everything a created torrent must satisfy, given where its data is.
func checkCreated(t *testing.T, m *MetaInfo, data []byte, root string) {
	t.Helper()
	// Sorted keys: the generic decoder refuses unsorted dictionaries.
	var generic any
	if err := bencode.Unmarshal(data, &generic); err != nil {
		t.Fatalf("output is not canonical bencoding: %v", err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("parse back: %v", err)
	}
	if back.InfoHash != m.InfoHash || back.InfoHash != sha1.Sum(m.InfoBytes) {
		t.Fatalf("info-hash %s, parsed back %s", m.InfoHash, back.InfoHash)
	}
	// Hash the data ourselves, one piece at a time over the concatenated files.
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
		if int64(len(b)) != f.Length {
			t.Fatalf("%s: length %d in torrent, %d on disk", p, f.Length, len(b))
		}
		stream = append(stream, b...)
	}
	if int64(len(stream)) != m.Info.TotalLength {
		t.Fatalf("total %d, data %d", m.Info.TotalLength, len(stream))
	}
	for i := range m.Info.NumPieces() {
		off := m.Info.PieceOffset(i)
		if h := Hash(sha1.Sum(stream[off : off+m.Info.PieceSize(i)])); h != m.Info.Pieces[i] {
			t.Fatalf("piece %d hash %s, data hashes to %s", i, m.Info.Pieces[i], h)
		}
	}
}

func TestCreateLayouts(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]int // empty key: root is a single file
		pieceLen  int64
		wantPaths []string
	}{
		{"single", map[string]int{"": 100_000}, 16 << 10, []string{""}},
		{"single exact pieces", map[string]int{"": 64 << 10}, 16 << 10, []string{""}},
		{"single auto", map[string]int{"": 3 << 20}, 0, []string{""}},
		{"single one short piece", map[string]int{"": 10}, 1 << 20, []string{""}},
		{"nested", map[string]int{
			"b/c/d.bin": 40_000, "a.txt": 17, "b/a": 70_000, "b/c/.hidden": 5, "z": 16 << 10,
		}, 32 << 10, []string{"a.txt", "b/a", "b/c/.hidden", "b/c/d.bin", "z"}},
		{"zero-byte file among others", map[string]int{
			"1": 20_000, "2-empty": 0, "3": 20_000, "4/empty": 0,
		}, 16 << 10, []string{"1", "2-empty", "3", "4/empty"}},
		{"utf-8 names", map[string]int{"été/日本.txt": 50_000, "été/ö": 3}, 16 << 10,
			[]string{"été/ö", "été/日本.txt"}},
		// Byte-wise order of whole paths: "B" < "a" and "a-b" < "a.c" < "a/x".
		{"order", map[string]int{"a/x": 1, "a-b": 1, "a.c": 1, "B": 1, "a0": 1}, 16 << 10,
			[]string{"B", "a-b", "a.c", "a/x", "a0"}},
		{"big pieces", map[string]int{"x": 300_000, "y": 300_000}, 256 << 10, []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "data")
			if _, single := tt.files[""]; single {
				if err := os.WriteFile(root, bytes.Repeat([]byte("xyz"), tt.files[""]/3+1)[:tt.files[""]], 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				tree(t, root, tt.files)
			}
			var calls []int64
			m, data, err := Create(context.Background(), root, CreateOptions{
				PieceLength: tt.pieceLen, NoDate: true,
				Progress: func(n, _ int64) { calls = append(calls, n) },
			})
			if err != nil {
				t.Fatal(err)
			}
			checkCreated(t, m, data, root)
			if m.Info.Name != "data" {
				t.Errorf("name %q", m.Info.Name)
			}
			if tt.pieceLen != 0 && m.Info.PieceLength != tt.pieceLen {
				t.Errorf("piece length %d, want %d", m.Info.PieceLength, tt.pieceLen)
			}
			var paths []string
			for _, f := range m.Info.Files {
				paths = append(paths, strings.Join(f.Path, "/"))
			}
			if strings.Join(paths, "|") != strings.Join(tt.wantPaths, "|") {
				t.Errorf("files %q, want %q", paths, tt.wantPaths)
			}
			if m.Info.Single != (tt.wantPaths[0] == "") {
				t.Errorf("single = %v", m.Info.Single)
			}
			if len(calls) == 0 || calls[len(calls)-1] != m.Info.TotalLength {
				t.Errorf("progress calls %v, want last %d", calls, m.Info.TotalLength)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i] <= calls[i-1] {
					t.Errorf("progress went %d -> %d", calls[i-1], calls[i])
				}
			}
		})
	}
}

// Chunks of several pieces, pieces spanning files, and any number of workers give the same
// bytes as one worker.
func TestCreateDeterministic(t *testing.T) {
	root := filepath.Join(t.TempDir(), "d")
	files := map[string]int{}
	for i := range 30 {
		files[string(rune('a'+i%26))+"/"+strings.Repeat("f", i+1)] = 1000 + i*37_111
	}
	tree(t, root, files)
	var first []byte
	for _, workers := range []int{1, 2, 3, 8} {
		m, data, err := Create(context.Background(), root, CreateOptions{PieceLength: 16 << 10, NoDate: true, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			checkCreated(t, m, data, root)
			first = data
		} else if !bytes.Equal(first, data) {
			t.Fatalf("workers=%d gives different bytes", workers)
		}
	}
}

func TestCreateOptions(t *testing.T) {
	root := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(root, make([]byte, 40_000), 0o644); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		opts     CreateOptions
		announce string
		list     [][]string
		check    func(t *testing.T, m *MetaInfo, data []byte)
	}{
		{name: "bare", opts: CreateOptions{NoDate: true}, check: func(t *testing.T, m *MetaInfo, data []byte) {
			for _, key := range []string{"announce", "comment", "creation date", "url-list", "private"} {
				if bytes.Contains(data, []byte(key)) {
					t.Errorf("output has %q", key)
				}
			}
			if m.CreatedBy != "torrentfs" {
				t.Errorf("created by %q", m.CreatedBy)
			}
		}},
		{name: "one tracker", opts: CreateOptions{Announce: [][]string{{"http://a/announce"}}},
			announce: "http://a/announce"},
		{name: "tiers", opts: CreateOptions{Announce: [][]string{{"http://a", "udp://b:1"}, {}, {" http://c "}}},
			announce: "http://a", list: [][]string{{"http://a", "udp://b:1"}, {"http://c"}}},
		{name: "everything", opts: CreateOptions{
			Private: true, Comment: "hi there", WebSeeds: []string{"http://w/1", "http://w/2"},
			CreationDate: date, CreatedBy: "me",
		}, check: func(t *testing.T, m *MetaInfo, data []byte) {
			if !m.Info.Private || m.Comment != "hi there" || m.CreatedBy != "me" ||
				m.CreationDate != date.Unix() || strings.Join(m.URLList, " ") != "http://w/1 http://w/2" {
				t.Errorf("got %+v", m)
			}
		}},
		{name: "date defaults to now", opts: CreateOptions{}, check: func(t *testing.T, m *MetaInfo, data []byte) {
			if d := time.Since(time.Unix(m.CreationDate, 0)); d < -time.Minute || d > time.Hour {
				t.Errorf("creation date %d", m.CreationDate)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, data, err := Create(context.Background(), root, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkCreated(t, m, data, root)
			if m.Announce != tt.announce {
				t.Errorf("announce %q, want %q", m.Announce, tt.announce)
			}
			if got, want := fmtTiers(m.AnnounceList), fmtTiers(tt.list); got != want {
				t.Errorf("announce-list %s, want %s", got, want)
			}
			if tt.check != nil {
				tt.check(t, m, data)
			}
		})
	}
}

func fmtTiers(tiers [][]string) string {
	var s []string
	for _, t := range tiers {
		s = append(s, "["+strings.Join(t, " ")+"]")
	}
	return strings.Join(s, "")
}

func TestCreateSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "r")
	tree(t, root, map[string]int{"sub/real": 1000})
	tree(t, dir, map[string]int{"outside": 2000})
	if err := os.Symlink(filepath.Join(dir, "outside"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(root, "sublink")); err != nil {
		t.Fatal(err)
	}
	m, data, err := Create(context.Background(), root, CreateOptions{NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, m, data, root)
	var got []string
	for _, f := range m.Info.Files {
		got = append(got, strings.Join(f.Path, "/"))
	}
	if want := "link sub/real sublink/real"; strings.Join(got, " ") != want {
		t.Errorf("files %q, want %s", got, want)
	}

	// The root itself may be a link; the torrent is named after the link.
	alias := filepath.Join(dir, "alias")
	if err := os.Symlink(root, alias); err != nil {
		t.Fatal(err)
	}
	m2, _, err := Create(context.Background(), alias, CreateOptions{NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Info.Name != "alias" || len(m2.Info.Files) != 3 {
		t.Errorf("via link: name %q, %d files", m2.Info.Name, len(m2.Info.Files))
	}
}

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to create from
		opts    CreateOptions
		wantErr string
	}{
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "nope") }, CreateOptions{}, "no such file"},
		{"empty dir", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "e")
			must(t, os.MkdirAll(filepath.Join(p, "sub/subsub"), 0o755))
			return p
		}, CreateOptions{}, "no files"},
		{"zero-byte single file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "z")
			must(t, os.WriteFile(p, nil, 0o644))
			return p
		}, CreateOptions{}, "no data"},
		{"only empty files", func(t *testing.T, dir string) string {
			tree(t, filepath.Join(dir, "d"), map[string]int{"a": 0, "b/c": 0})
			return filepath.Join(dir, "d")
		}, CreateOptions{}, "no data"},
		{"symlink loop", func(t *testing.T, dir string) string {
			tree(t, filepath.Join(dir, "d"), map[string]int{"a/f": 10})
			must(t, os.Symlink("..", filepath.Join(dir, "d/a/up")))
			return filepath.Join(dir, "d")
		}, CreateOptions{}, "loop"},
		{"broken symlink", func(t *testing.T, dir string) string {
			tree(t, filepath.Join(dir, "d"), map[string]int{"f": 10})
			must(t, os.Symlink("nowhere", filepath.Join(dir, "d/g")))
			return filepath.Join(dir, "d")
		}, CreateOptions{}, "broken symbolic link"},
		{"fifo", func(t *testing.T, dir string) string {
			tree(t, filepath.Join(dir, "d"), map[string]int{"f": 10})
			must(t, syscall.Mkfifo(filepath.Join(dir, "d/pipe"), 0o644))
			return filepath.Join(dir, "d")
		}, CreateOptions{}, "special file"},
		{"fifo as root", func(t *testing.T, dir string) string {
			must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
			return filepath.Join(dir, "pipe")
		}, CreateOptions{}, "not a regular file"},
		{"non-UTF-8 name", func(t *testing.T, dir string) string {
			tree(t, filepath.Join(dir, "d"), map[string]int{"ok": 10, "bad\xff": 10})
			return filepath.Join(dir, "d")
		}, CreateOptions{}, "UTF-8"},
		{"piece length not a power of two", func(t *testing.T, dir string) string {
			tree(t, dir, map[string]int{"f": 10})
			return filepath.Join(dir, "f")
		}, CreateOptions{PieceLength: 48 << 10}, "power of two"},
		{"piece length too small", func(t *testing.T, dir string) string {
			tree(t, dir, map[string]int{"f": 10})
			return filepath.Join(dir, "f")
		}, CreateOptions{PieceLength: 8 << 10}, "smaller than 16 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t, t.TempDir())
			_, _, err := Create(context.Background(), p, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCreateUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files regardless of mode")
	}
	root := filepath.Join(t.TempDir(), "d")
	tree(t, root, map[string]int{"a": 10, "b": 10})
	must(t, os.Chmod(filepath.Join(root, "b"), 0))
	if _, _, err := Create(context.Background(), root, CreateOptions{}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v", err)
	}
}

func TestCreateCancel(t *testing.T) {
	root := filepath.Join(t.TempDir(), "f")
	tree(t, filepath.Dir(root), map[string]int{"f": 20 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err := Create(ctx, root, CreateOptions{PieceLength: 16 << 10, Workers: 1, Progress: func(int64, int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
