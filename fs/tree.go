package fs

import (
	"context"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
	"torrentfs/reader"
)

// Options configure an FS.
type Options struct {
	// UID and GID own every node.
	UID, GID uint32
	// MTime is every node's modification time (the torrent's creation date; mount time
	// when it has none). Zero means now.
	MTime time.Time
	// ReadTimeout > 0 fails a read that waited that long with EIO.
	ReadTimeout time.Duration
	// Reader tunes each handle's read head.
	Reader reader.Options
	Log    *logrus.Entry
}

// FS is the file system of one torrent.
type FS struct {
	t    reader.Torrent
	info *metainfo.Info
	opts Options
	log  *logrus.Entry
	root *dir

	closing   chan struct{}
	closeOnce sync.Once
}

const (
	rootInode = 1
	// Attributes of files change as pieces arrive (st_blocks); directories never change.
	fileAttrValid = time.Second
	dirAttrValid  = time.Minute
	// presentTTL bounds how stale a file's "bytes present" figure may be.
	presentTTL = time.Second
)

// New builds the tree of t's files. Inode numbers follow from the metainfo alone (root 1,
// file i 2+i, then directories in path order), so they are the same on every mount.
func New(t reader.Torrent, opts Options) *FS {
	if opts.MTime.IsZero() {
		opts.MTime = time.Now()
	}
	if opts.Log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		opts.Log = logrus.NewEntry(l)
	}
	f := &FS{t: t, info: t.Info(), opts: opts, log: opts.Log, closing: make(chan struct{})}
	f.root = f.newDir(rootInode)
	nextDirInode := uint64(2 + len(f.info.Files))
	top := f.root
	if !f.info.Single {
		top = f.newDir(nextDirInode)
		nextDirInode++
		f.root.add(f.info.Name, top)
	}
files:
	for i := range f.info.Files {
		mf := &f.info.Files[i]
		if mf.Padding {
			continue
		}
		node := &file{fs: f, index: i, inode: uint64(2 + i), length: mf.Length}
		if f.info.Single {
			f.root.add(f.info.Name, node)
			continue
		}
		d := top
		for _, c := range mf.Path[:len(mf.Path)-1] {
			sub, ok := d.entries[c].(*dir)
			if !ok {
				if d.entries[c] != nil {
					// A file already has this name; metainfo should have refused it.
					f.log.Warnf("%s clashes with a file; not shown", f.info.DisplayPath(mf))
					continue files
				}
				sub = f.newDir(nextDirInode)
				nextDirInode++
				d.add(c, sub)
			}
			d = sub
		}
		name := mf.Path[len(mf.Path)-1]
		if d.entries[name] != nil {
			f.log.Warnf("%s appears twice in the torrent; showing the first", f.info.DisplayPath(mf))
			continue
		}
		d.add(name, node)
	}
	f.root.sortDirents()
	return f
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Root is the mount's top directory.
func (f *FS) Root() (bfs.Node, error) { return f.root, nil }

// Close makes blocked and future reads fail with EIO, so an unmount is not held up by
// readers waiting for pieces that will never come.
func (f *FS) Close() {
	f.closeOnce.Do(func() { close(f.closing) })
}

func (f *FS) closed() bool {
	select {
	case <-f.closing:
		return true
	default:
		return false
	}
}

// Statfs reports the torrent's size as the file system's, all of it used.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	const bsize = 4096
	resp.Bsize, resp.Frsize = bsize, bsize
	resp.Blocks = uint64((f.info.TotalLength + bsize - 1) / bsize)
	resp.Files = uint64(len(f.info.Files))
	resp.Namelen = metainfo.MaxComponentLength
	return nil
}

// dir is a directory node.
type dir struct {
	fs      *FS
	inode   uint64
	entries map[string]bfs.Node
	dirents []fuse.Dirent
}

func (f *FS) newDir(inode uint64) *dir {
	return &dir{fs: f, inode: inode, entries: map[string]bfs.Node{}}
}

func (d *dir) add(name string, n bfs.Node) {
	d.entries[name] = n
	de := fuse.Dirent{Name: name}
	switch n := n.(type) {
	case *dir:
		de.Inode, de.Type = n.inode, fuse.DT_Dir
	case *file:
		de.Inode, de.Type = n.inode, fuse.DT_File
	}
	d.dirents = append(d.dirents, de)
}

func (d *dir) sortDirents() {
	sort.Slice(d.dirents, func(a, b int) bool { return d.dirents[a].Name < d.dirents[b].Name })
	for _, n := range d.entries {
		if sub, ok := n.(*dir); ok {
			sub.sortDirents()
		}
	}
}

func (d *dir) Attr(ctx context.Context, a *fuse.Attr) error {
	o := &d.fs.opts
	a.Valid = dirAttrValid
	a.Inode = d.inode
	a.Mode = os.ModeDir | 0o555
	a.Nlink = 2
	a.Uid, a.Gid = o.UID, o.GID
	a.Mtime, a.Ctime, a.Atime = o.MTime, o.MTime, o.MTime
	return nil
}

func (d *dir) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	if n, ok := d.entries[name]; ok {
		return n, nil
	}
	return nil, syscall.ENOENT
}

func (d *dir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	return d.dirents, nil
}

var (
	_ bfs.FS                 = (*FS)(nil)
	_ bfs.FSStatfser         = (*FS)(nil)
	_ bfs.Node               = (*dir)(nil)
	_ bfs.NodeStringLookuper = (*dir)(nil)
	_ bfs.HandleReadDirAller = (*dir)(nil)
)
