package fs

import (
	"context"
	"os"
	"slices"
	"sort"
	"strconv"
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
	// ReadTimeout > 0 fails a read that waited that long with EIO.
	ReadTimeout time.Duration
	// Reader tunes each handle's read head.
	Reader reader.Options
	Log    *logrus.Entry
}

// FS is a file system of torrents: one directory per torrent at the root, added and
// removed while mounted.
type FS struct {
	opts    Options
	log     *logrus.Entry
	root    *dir
	started time.Time // the root's mtime

	mu       sync.Mutex
	server   *bfs.Server // set by Mount, for telling the kernel a directory changed
	byName   map[string]*Torrent
	nextBase uint64 // inode base of the next torrent added
	total    int64  // bytes of every torrent shown, for statfs
	files    uint64

	closing   chan struct{}
	closeOnce sync.Once
}

// Torrent is one torrent's directory in an FS. Its files appear when Show gives it the
// torrent (at once for a .torrent file, once the metadata is in for a magnet link).
type Torrent struct {
	fs    *FS
	name  string
	base  uint64 // its inodes are base+1 (its directory), base+2+i (file i), then subdirectories
	dir   *dir
	mtime time.Time

	// t, info and files are set once by Show, under dir.mu.
	t     reader.Torrent
	info  *metainfo.Info
	files []*file

	closing   chan struct{} // closed by Remove or FS.Close
	closeOnce sync.Once
}

const (
	rootInode = 1
	// inodeSpan is how many inode numbers each torrent owns: removed torrents' numbers are
	// never reused while mounted, so the kernel cannot mistake a new file for an old one.
	inodeSpan = 1 << 32
	// Attributes of files change as pieces arrive (st_blocks); a torrent's directory
	// changes once (its files appear) and the root whenever a torrent comes or goes, which
	// the kernel is told about.
	fileAttrValid = time.Second
	dirAttrValid  = time.Minute
	// presentTTL bounds how stale a file's "bytes present" figure may be.
	presentTTL = time.Second
)

// New makes an empty file system; Add puts torrents in it.
func New(opts Options) *FS {
	if opts.Log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		opts.Log = logrus.NewEntry(l)
	}
	f := &FS{opts: opts, log: opts.Log, started: time.Now(), byName: map[string]*Torrent{},
		nextBase: inodeSpan, closing: make(chan struct{})}
	f.root = f.newDir(rootInode, f.started)
	return f
}

// Add shows an empty directory for a torrent at the root, named name or, if that is taken
// or not a valid file name, a variant of it (see Name). mtime is its files' modification
// time (the torrent's creation date); zero means now.
func (f *FS) Add(name string, mtime time.Time) *Torrent {
	if mtime.IsZero() {
		mtime = time.Now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name = f.uniqueName(name)
	tt := &Torrent{fs: f, name: name, base: f.nextBase, mtime: mtime, closing: make(chan struct{})}
	f.nextBase += inodeSpan
	tt.dir = f.newDir(tt.base+1, mtime)
	f.byName[name] = tt
	f.root.mu.Lock()
	f.root.add(name, tt.dir)
	f.root.sortDirents()
	f.root.mu.Unlock()
	return tt
}

// uniqueName makes name a valid directory name not yet used at the root: "x", "x (2)", ...
func (f *FS) uniqueName(name string) string {
	if metainfo.CheckName(name) != nil {
		name = "torrent"
	}
	if len(name) > metainfo.MaxComponentLength-8 {
		name = name[:metainfo.MaxComponentLength-8] // room for " (NNNN)"; a name, not a path to match
	}
	for k, base := 2, name; ; k++ {
		if _, taken := f.byName[name]; !taken {
			return name
		}
		name = base + " (" + strconv.Itoa(k) + ")"
	}
}

// Name is the torrent's directory name at the root.
func (tt *Torrent) Name() string {
	tt.fs.mu.Lock()
	defer tt.fs.mu.Unlock()
	return tt.name
}

// Rename moves the torrent's directory to name (made unique as by Add) and returns the
// name it got. A magnet's directory is renamed once its torrent's own name is known.
func (tt *Torrent) Rename(name string) string {
	f := tt.fs
	f.mu.Lock()
	old := tt.name
	if name == old || f.byName[old] != tt {
		f.mu.Unlock()
		return old
	}
	delete(f.byName, old)
	name = f.uniqueName(name)
	tt.name = name
	f.byName[name] = tt
	f.root.mu.Lock()
	f.root.remove(old)
	f.root.add(name, tt.dir)
	f.root.sortDirents()
	f.root.mu.Unlock()
	f.mu.Unlock()
	f.invalidate(f.root, old)
	return name
}

// Show fills the directory with t's files: M/<name>/<path...> for a torrent of several
// files, M/<name>/<name> for a single file; pad files are hidden. Inode numbers follow from
// the metainfo (file i is base+2+i, then directories in path order). Show is called once.
func (tt *Torrent) Show(t reader.Torrent) {
	info := t.Info()
	d := tt.dir
	d.mu.Lock()
	tt.t, tt.info = t, info
	nextDirInode := tt.base + uint64(2+len(info.Files))
files:
	for i := range info.Files {
		mf := &info.Files[i]
		if mf.Padding {
			continue
		}
		node := &file{tt: tt, index: i, inode: tt.base + uint64(2+i), length: mf.Length}
		tt.files = append(tt.files, node)
		if info.Single {
			d.add(info.Name, node)
			continue
		}
		sub := d
		for _, c := range mf.Path[:len(mf.Path)-1] {
			next, ok := sub.entries[c].(*dir)
			if !ok {
				if sub.entries[c] != nil {
					// A file already has this name; metainfo should have refused it.
					tt.fs.log.Warnf("%s clashes with a file; not shown", info.DisplayPath(mf))
					continue files
				}
				next = tt.fs.newDir(nextDirInode, tt.mtime)
				nextDirInode++
				sub.add(c, next)
			}
			sub = next
		}
		name := mf.Path[len(mf.Path)-1]
		if sub.entries[name] != nil {
			tt.fs.log.Warnf("%s appears twice in the torrent; showing the first", info.DisplayPath(mf))
			continue
		}
		sub.add(name, node)
	}
	d.sortDirents()
	d.mu.Unlock()
	tt.fs.mu.Lock()
	tt.fs.total += info.TotalLength
	tt.fs.files += uint64(len(info.Files))
	tt.fs.mu.Unlock()
	tt.fs.invalidate(d, "")
}

// Remove takes the torrent's directory away: blocked and later reads of its open files
// fail with EIO, new lookups find nothing, and the kernel forgets the cached entry.
func (tt *Torrent) Remove() {
	tt.close()
	f := tt.fs
	f.mu.Lock()
	name := tt.name
	if f.byName[name] != tt {
		f.mu.Unlock()
		return
	}
	delete(f.byName, name)
	tt.dir.mu.RLock()
	if tt.info != nil {
		f.total -= tt.info.TotalLength
		f.files -= uint64(len(tt.info.Files))
	}
	tt.dir.mu.RUnlock()
	f.root.mu.Lock()
	f.root.remove(name)
	f.root.mu.Unlock()
	s := f.server
	f.mu.Unlock()
	f.invalidate(f.root, name)
	tt.dir.mu.RLock()
	files := tt.files
	tt.dir.mu.RUnlock()
	if s == nil || len(files) == 0 {
		return
	}
	// The kernel's page cache of the files must go too, or a process holding one open
	// would go on reading cached pages. Reads blocked in this process fail now (closing),
	// so the kernel can drop their pages; still, never wait on the kernel for long.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, n := range files {
			if err := s.InvalidateNodeData(n); err != nil && err != fuse.ErrNotCached {
				f.log.Debugf("invalidate a removed file's cache: %v", err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		f.log.Warnf("the kernel was slow to drop the cache of %s's files", name)
	}
}

func (tt *Torrent) close() { tt.closeOnce.Do(func() { close(tt.closing) }) }

func (tt *Torrent) closed() bool {
	select {
	case <-tt.closing:
		return true
	case <-tt.fs.closing:
		return true
	default:
		return false
	}
}

// invalidate tells the kernel that d's entry name (or, with name "", d's listing and
// attributes) changed. Before the mount, and for nodes the kernel never saw, there is
// nothing to tell.
func (f *FS) invalidate(d *dir, name string) {
	f.mu.Lock()
	s := f.server
	f.mu.Unlock()
	if s == nil {
		return
	}
	// The kernel may be waiting on this very process (a lookup in flight): do not block.
	go func() {
		var err error
		if name != "" {
			err = s.InvalidateEntry(d, name)
		} else {
			err = s.InvalidateNodeData(d)
		}
		if err != nil && err != fuse.ErrNotCached {
			f.log.Debugf("invalidate %q: %v", name, err)
		}
	}()
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

// Statfs reports the torrents' sizes as the file system's, all of it used.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	const bsize = 4096
	f.mu.Lock()
	total, files := f.total, f.files
	f.mu.Unlock()
	resp.Bsize, resp.Frsize = bsize, bsize
	resp.Blocks = uint64((total + bsize - 1) / bsize)
	resp.Files = files
	resp.Namelen = metainfo.MaxComponentLength
	return nil
}

// dir is a directory node. Its entries are guarded by mu: the root's change as torrents
// come and go, a torrent's directory is filled once by Show, the rest never change.
type dir struct {
	fs    *FS
	inode uint64
	mtime time.Time

	mu      sync.RWMutex
	entries map[string]bfs.Node
	dirents []fuse.Dirent
}

func (f *FS) newDir(inode uint64, mtime time.Time) *dir {
	return &dir{fs: f, inode: inode, mtime: mtime, entries: map[string]bfs.Node{}}
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

func (d *dir) remove(name string) {
	delete(d.entries, name)
	// In place: ReadDirAll hands out copies.
	d.dirents = slices.DeleteFunc(d.dirents, func(de fuse.Dirent) bool { return de.Name == name })
}

// sortDirents sorts d's listing and its subdirectories' (whose entries d's lock covers
// while they are being built).
func (d *dir) sortDirents() {
	sort.Slice(d.dirents, func(a, b int) bool { return d.dirents[a].Name < d.dirents[b].Name })
	for _, n := range d.entries {
		if sub, ok := n.(*dir); ok && sub != d && len(sub.dirents) > 1 {
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
	a.Mtime, a.Ctime, a.Atime = d.mtime, d.mtime, d.mtime
	return nil
}

func (d *dir) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if n, ok := d.entries[name]; ok {
		return n, nil
	}
	return nil, syscall.ENOENT
}

// ReadDirAll never waits: a magnet's directory is simply empty until its files are known.
func (d *dir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]fuse.Dirent(nil), d.dirents...), nil
}

var (
	_ bfs.FS                 = (*FS)(nil)
	_ bfs.FSStatfser         = (*FS)(nil)
	_ bfs.Node               = (*dir)(nil)
	_ bfs.NodeStringLookuper = (*dir)(nil)
	_ bfs.HandleReadDirAller = (*dir)(nil)
)
