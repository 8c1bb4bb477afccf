package fs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
)

func multiFake() *fakeTorrent {
	return newFake("album", 64<<10,
		fakeFile{path: []string{"a.txt"}, n: 100<<10 + 7},
		fakeFile{path: []string{".pad", "1"}, n: 1000, pad: true},
		fakeFile{path: []string{"disc1", "01.flac"}, n: 300 << 10},
		fakeFile{path: []string{"disc1", "02.flac"}, n: 0},
		fakeFile{path: []string{"disc2", "deep", "x.bin"}, n: 5},
	)
}

// walk lists every path of the tree below n with its inode and mode.
func walk(t *testing.T, n bfs.Node, prefix string, out map[string]fuse.Attr) {
	t.Helper()
	var a fuse.Attr
	if err := n.Attr(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	out[prefix] = a
	d, ok := n.(*dir)
	if !ok {
		return
	}
	ents, err := d.ReadDirAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		c, err := d.Lookup(context.Background(), e.Name)
		if err != nil {
			t.Fatalf("lookup %s/%s: %v", prefix, e.Name, err)
		}
		var ca fuse.Attr
		c.Attr(context.Background(), &ca)
		if ca.Inode != e.Inode {
			t.Errorf("%s/%s: dirent inode %d, attr inode %d", prefix, e.Name, e.Inode, ca.Inode)
		}
		if again, _ := d.Lookup(context.Background(), e.Name); again != c {
			t.Errorf("%s/%s: a second lookup gave another node", prefix, e.Name)
		}
		walk(t, c, prefix+"/"+e.Name, out)
	}
}

func TestTree(t *testing.T) {
	mtime := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		ft    *fakeTorrent
		paths map[string]int64 // file sizes; -1 for directories
	}{
		{"single", newFake("movie.mkv", 64<<10, fakeFile{n: 1 << 20}), map[string]int64{"": -1, "/movie.mkv": -1, "/movie.mkv/movie.mkv": 1 << 20}},
		{"multi", multiFake(), map[string]int64{
			"": -1, "/album": -1, "/album/a.txt": 100<<10 + 7, "/album/disc1": -1,
			"/album/disc1/01.flac": 300 << 10, "/album/disc1/02.flac": 0,
			"/album/disc2": -1, "/album/disc2/deep": -1, "/album/disc2/deep/x.bin": 5,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]fuse.Attr{}
			f := New(Options{UID: 1234, GID: 99})
			f.Add(tc.ft.Info().Name, mtime).Show(tc.ft)
			root, _ := f.Root()
			walk(t, root, "", got)
			if len(got) != len(tc.paths) {
				t.Errorf("tree has %d paths, want %d: %v", len(got), len(tc.paths), keys(got))
			}
			inodes := map[uint64]string{}
			for p, size := range tc.paths {
				a, ok := got[p]
				if !ok {
					t.Errorf("%q missing", p)
					continue
				}
				if other, dup := inodes[a.Inode]; dup {
					t.Errorf("%q and %q share inode %d", p, other, a.Inode)
				}
				inodes[a.Inode] = p
				wantMode := os.FileMode(0o444)
				if size < 0 {
					wantMode = os.ModeDir | 0o555
				} else if a.Size != uint64(size) {
					t.Errorf("%q size %d, want %d", p, a.Size, size)
				}
				if a.Mode != wantMode || a.Uid != 1234 || a.Gid != 99 || p != "" && !a.Mtime.Equal(mtime) {
					t.Errorf("%q: mode %v uid %d gid %d mtime %v", p, a.Mode, a.Uid, a.Gid, a.Mtime)
				}
			}
			if got[""].Inode != 1 {
				t.Errorf("root inode %d", got[""].Inode)
			}
			// Another mount of the same torrent numbers everything the same way.
			again := map[string]fuse.Attr{}
			root2, _ := newFS(tc.ft, Options{}).Root()
			walk(t, root2, "", again)
			for p, a := range got {
				if again[p].Inode != a.Inode {
					t.Errorf("%q: inode %d, then %d", p, a.Inode, again[p].Inode)
				}
			}
		})
	}
}

func keys(m map[string]fuse.Attr) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestLookupMissing(t *testing.T) {
	root, _ := newFS(multiFake(), Options{}).Root()
	for _, name := range []string{"nope", ".pad", "a.txt"} {
		if _, err := root.(*dir).Lookup(context.Background(), name); err != syscall.ENOENT {
			t.Errorf("lookup %q: %v, want ENOENT", name, err)
		}
	}
	album, _ := root.(*dir).Lookup(context.Background(), "album")
	if _, err := album.(*dir).Lookup(context.Background(), ".pad"); err != syscall.ENOENT {
		t.Errorf("pad directory shown: %v", err)
	}
}

func TestProgressAndBlocks(t *testing.T) {
	ft := multiFake()
	f := newFS(ft, Options{})
	root, _ := f.Root()
	album, _ := root.(*dir).Lookup(context.Background(), "album")
	disc1, _ := album.(*dir).Lookup(context.Background(), "disc1")
	n, _ := disc1.(*dir).Lookup(context.Background(), "01.flac")
	fl := n.(*file)
	get := func() (string, uint64) {
		var resp fuse.GetxattrResponse
		if err := fl.Getxattr(context.Background(), &fuse.GetxattrRequest{Name: ProgressXattr}, &resp); err != nil {
			t.Fatal(err)
		}
		var a fuse.Attr
		fl.Attr(context.Background(), &a)
		return string(resp.Xattr), a.Blocks
	}
	if p, b := get(); p != "0.0%" || b != 0 {
		t.Fatalf("nothing downloaded: %s, %d blocks", p, b)
	}
	// 01.flac is torrent bytes [103431, 410631): pieces 1..6. Piece 2 is wholly inside.
	ft.Provide(2)
	fl.presentAt = time.Time{} // skip the cache's TTL
	if p, b := get(); p != "21.3%" || b != 128 {
		t.Errorf("one piece of ~4.7: %s, %d blocks; want 21.3%%, 128", p, b)
	}
	ft.Provide(1, 2, 3, 4, 5, 6)
	fl.presentAt = time.Time{}
	if p, b := get(); p != "100.0%" || b != 600 {
		t.Errorf("all: %s, %d blocks", p, b)
	}
	var resp fuse.GetxattrResponse
	if err := fl.Getxattr(context.Background(), &fuse.GetxattrRequest{Name: "user.other"}, &resp); err != fuse.ErrNoXattr {
		t.Errorf("unknown xattr: %v", err)
	}
	var lr fuse.ListxattrResponse
	fl.Listxattr(context.Background(), &fuse.ListxattrRequest{}, &lr)
	if !strings.Contains(string(lr.Xattr), ProgressXattr) {
		t.Errorf("listxattr %q", lr.Xattr)
	}
}

func TestCheckAllowOther(t *testing.T) {
	dir := t.TempDir()
	with := filepath.Join(dir, "with")
	without := filepath.Join(dir, "without")
	os.WriteFile(with, []byte("# comment\nuser_allow_other\n"), 0o644)
	os.WriteFile(without, []byte("#user_allow_other\nmount_max = 1000\n"), 0o644)
	for _, tc := range []struct {
		euid int
		conf string
		ok   bool
	}{
		{0, without, true},
		{1000, with, true},
		{1000, without, false},
		{1000, filepath.Join(dir, "missing"), false},
	} {
		err := checkAllowOther(tc.euid, tc.conf)
		if (err == nil) != tc.ok {
			t.Errorf("uid %d conf %s: %v", tc.euid, filepath.Base(tc.conf), err)
		}
		if err != nil && !strings.Contains(err.Error(), "user_allow_other") {
			t.Errorf("error does not say what to do: %v", err)
		}
	}
}
