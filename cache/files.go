package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sys/unix"

	"torrentfs/metainfo"
)

// filePaths maps every file of the torrent to its path under dir. Pad files get "": they
// are never on disk.
func filePaths(dir string, info *metainfo.Info) ([]string, error) {
	dir = filepath.Clean(dir)
	paths := make([]string, len(info.Files))
	for i, f := range info.Files {
		if f.Padding {
			continue
		}
		parts := []string{info.Name}
		if !info.Single {
			parts = append(parts, f.Path...)
		}
		p, err := joinUnder(dir, parts)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	return paths, nil
}

// joinUnder joins parts below dir and refuses any result that is not strictly inside dir.
// metainfo already rejects "..", "/" and the like; this is the second lock on the door,
// because a path that escapes dir would let a torrent overwrite arbitrary files.
func joinUnder(dir string, parts []string) (string, error) {
	p := filepath.Join(append([]string{dir}, parts...)...)
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) ||
		filepath.IsAbs(rel) {
		return "", fmt.Errorf("file path %q leaves the data directory %s", strings.Join(parts, "/"), dir)
	}
	return p, nil
}

// handle is one open file, shared by concurrent readers and writers (pread/pwrite need no
// shared offset). refs counts users; a handle dropped from the cache is closed by its last
// user.
type handle struct {
	f       *os.File
	path    string
	blksize int64 // the file system's block size, a power of two
	refs    int
	dropped bool
}

// fileCache keeps at most max files open, so a torrent with 10k files cannot exhaust file
// descriptors. Handles are opened read-write unless readOnly; a file that does not exist is
// created (sized to its final length, sparse) only when the caller asks.
type fileCache struct {
	paths    []string
	lengths  []int64
	readOnly bool

	mu     sync.Mutex
	open   *simplelru.LRU[int, *handle]
	closed bool
}

func newFileCache(paths []string, lengths []int64, readOnly bool, max int) *fileCache {
	c := &fileCache{paths: paths, lengths: lengths, readOnly: readOnly}
	// The eviction callback only runs inside our own calls to Add/Remove/Purge, with c.mu
	// held; it closes nothing that is in use.
	c.open, _ = simplelru.NewLRU[int, *handle](max, func(_ int, h *handle) {
		h.dropped = true
		if h.refs == 0 {
			h.f.Close()
		}
	})
	return c
}

// get returns file i's handle with a reference the caller must give back with put.
func (c *fileCache) get(i int, create bool) (*handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if h, ok := c.open.Get(i); ok {
		h.refs++
		return h, nil
	}
	f, err := c.openFile(i, create)
	if err != nil {
		return nil, err
	}
	h := &handle{f: f, path: c.paths[i], refs: 1, blksize: blockSize(f)}
	c.open.Add(i, h)
	return h, nil
}

func (c *fileCache) openFile(i int, create bool) (*os.File, error) {
	path := c.paths[i]
	if c.readOnly {
		// os errors are *PathError and already name the file.
		return os.Open(path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, err
	}
	if err := sizeFile(f, c.lengths[i]); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sizeFile gives a file its final length. Extending makes a sparse tail, so reading ranges
// not yet downloaded costs nothing; a wrong-sized file from elsewhere is fixed, not deleted.
func sizeFile(f *os.File, length int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != length {
		if err := f.Truncate(length); err != nil {
			return fmt.Errorf("resize to %d bytes: %w", length, err)
		}
	}
	return nil
}

func (c *fileCache) put(h *handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.refs--
	if h.refs == 0 && h.dropped {
		h.f.Close()
	}
}

// close drops every handle; handles still in use are closed by their last put.
func (c *fileCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.open.Purge()
}

// blockSize is the file's preferred I/O block size, which on the file systems we care about
// (ext4, xfs, btrfs, tmpfs) is the allocation unit hole punching works in.
func blockSize(f *os.File) int64 {
	var st unix.Stat_t
	var serr error
	if err := withFd(&handle{f: f}, func(fd int) { serr = unix.Fstat(fd, &st) }); err == nil && serr == nil &&
		st.Blksize > 0 && st.Blksize&(st.Blksize-1) == 0 {
		return int64(st.Blksize)
	}
	return 4096
}
