package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// Full disk: a 1 MiB tmpfs mounted for this test (needs root and mount(2); skipped
// otherwise). A write past the space must fail with ENOSPC and name the file.
func TestWriteDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	info, data := makeTorrent(t, "full", 64*kib, false, []fileSpec{{"x/big", 4 << 20, false}})
	s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var werr error
	for i := 0; i < info.NumPieces() && werr == nil; i++ {
		werr = s.WriteBlock(i, 0, data[info.PieceOffset(i):info.PieceOffset(i)+16*kib])
		if werr == nil {
			for b := 1; b < 4 && werr == nil; b++ {
				off := info.PieceOffset(i) + int64(b)*16*kib
				werr = s.WriteBlock(i, b*16*kib, data[off:off+16*kib])
			}
		}
	}
	t.Logf("error: %v", werr)
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("writing 4 MiB into 1 MiB: %v, want ENOSPC", werr)
	}
	if !strings.Contains(werr.Error(), filepath.Join(dir, "full", "x", "big")) {
		t.Errorf("error %q does not name the file", werr)
	}
}

func TestOpenErrors(t *testing.T) {
	info, data := makeTorrent(t, "e", 16*kib, false, []fileSpec{{"sub/f", 20 * kib, false}, {"g", 0, false}})

	t.Run("directory where a file belongs", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "e", "g"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "e", "g")) {
			t.Fatalf("Open: %v, want an error naming e/g", err)
		}
	})
	t.Run("file where a directory belongs", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "e"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "e", "sub"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// Found at Open (the file is checked there) or at the first write.
		s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{})
		if err == nil {
			defer s.Close()
			err = s.WriteBlock(0, 0, data[:16*kib])
		}
		if !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), filepath.Join(dir, "e", "sub", "f")) ||
			strings.Count(err.Error(), "/sub/f") != 1 {
			t.Fatalf("got %v, want ENOTDIR naming the file once", err)
		}
	})
}

func TestJoinUnder(t *testing.T) {
	for _, tc := range []struct {
		parts []string
		ok    bool
	}{
		{[]string{"name"}, true},
		{[]string{"name", "a", "b"}, true},
		{[]string{".."}, false},
		{[]string{"name", "..", ".."}, false},
		{[]string{"name", "../../etc/passwd"}, false},
		{[]string{"."}, false},
		{[]string{"name", "..", "other"}, true}, // still below dir
		{[]string{"/abs"}, true},                // Join keeps it below dir
	} {
		p, err := joinUnder("/data/dir", tc.parts)
		if (err == nil) != tc.ok {
			t.Errorf("joinUnder(%q) = %q, %v; want ok=%v", tc.parts, p, err, tc.ok)
		}
		if err == nil && !strings.HasPrefix(p, "/data/dir/") {
			t.Errorf("joinUnder(%q) = %q, outside the directory", tc.parts, p)
		}
	}
}

// Files are created sized (sparse) on first write, zero-length ones at Open, and an
// existing file with the wrong size is fixed, not deleted.
func TestFileSizing(t *testing.T) {
	info, data := makeTorrent(t, "s", 16*kib, false, []fileSpec{
		{"long", 40 * kib, false}, {"short", 30 * kib, false}, {"empty", 0, false}, {"later", 50 * kib, false},
	})
	dir := t.TempDir()
	root := filepath.Join(dir, "s")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "long"), make([]byte, 100*kib), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "short"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, info, Options{})
	size := func(name string) int64 {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			return -1
		}
		return st.Size()
	}
	if size("long") != 40*kib || size("short") != 30*kib || size("empty") != 0 || size("later") != -1 {
		t.Fatalf("after Open sizes long=%d short=%d empty=%d later=%d",
			size("long"), size("short"), size("empty"), size("later"))
	}
	last := info.NumPieces() - 1
	writePiece(t, s, data, last, nil)
	if size("later") != 50*kib {
		t.Fatalf("after first write later is %d bytes", size("later"))
	}
	if u := diskUsage(t, filepath.Join(root, "later")); u > 16*kib {
		t.Errorf("later uses %d bytes on disk after one piece; not sparse", u)
	}
}

// A torrent with many more files than MaxOpenFiles works and keeps few open.
func TestManyFilesBoundedHandles(t *testing.T) {
	var files []fileSpec
	for i := range 300 {
		files = append(files, fileSpec{path: "d/" + strings.Repeat("x", i%7+1) + string(rune('a'+i%26)) + itoa(i), n: int64(1000 + i)})
	}
	info, data := makeTorrent(t, "many", 16*kib, false, files)
	s := open(t, t.TempDir(), info, Options{MaxOpenFiles: 4})
	for i := range info.NumPieces() {
		writePiece(t, s, data, i, nil)
		verify(t, s, i, true)
		if n := s.files.open.Len(); n > 4 {
			t.Fatalf("%d files open, bound is 4", n)
		}
	}

}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
