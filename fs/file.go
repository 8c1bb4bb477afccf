package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
	"github.com/sirupsen/logrus"

	"torrentfs/reader"
)

// ProgressXattr is the extended attribute holding a file's download progress, e.g. "37.5%".
const ProgressXattr = "user.torrentfs.progress"

// file is a regular file node.
type file struct {
	tt     *Torrent
	index  int // into Info.Files
	inode  uint64
	length int64

	mu        sync.Mutex
	present   int64 // verified bytes of this file on disk, as of presentAt
	presentAt time.Time
}

func (n *file) Attr(ctx context.Context, a *fuse.Attr) error {
	o := &n.tt.fs.opts
	a.Valid = fileAttrValid
	a.Inode = n.inode
	a.Size = uint64(n.length)
	a.Blocks = uint64((n.bytesPresent() + 511) / 512)
	a.BlockSize = 1 << 20
	a.Mode = 0o444
	a.Nlink = 1
	a.Uid, a.Gid = o.UID, o.GID
	a.Mtime, a.Ctime, a.Atime = n.tt.mtime, n.tt.mtime, n.tt.mtime
	return nil
}

// bytesPresent counts the file's bytes that lie in verified pieces. It asks about every
// piece of the file, so the figure is cached for presentTTL: stat is called a lot.
func (n *file) bytesPresent() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if !n.presentAt.IsZero() && now.Sub(n.presentAt) < presentTTL {
		return n.present
	}
	info, t := n.tt.info, n.tt.t
	off := info.Files[n.index].Offset
	first, last := info.PieceRange(off, n.length)
	var sum int64
	for k := first; k <= last; k++ {
		if t.HasPiece(k) {
			ps := info.PieceOffset(k)
			sum += min(ps+info.PieceSize(k), off+n.length) - max(ps, off)
		}
	}
	n.present, n.presentAt = sum, now
	return sum
}

func (n *file) progress() string {
	if n.length == 0 {
		return "100.0%"
	}
	return fmt.Sprintf("%.1f%%", float64(n.bytesPresent())*100/float64(n.length))
}

func (n *file) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	if req.Name != ProgressXattr {
		return fuse.ErrNoXattr
	}
	resp.Xattr = []byte(n.progress())
	return nil
}

func (n *file) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	resp.Append(ProgressXattr)
	return nil
}

// Open gives each handle its own read head. The content never changes, so the kernel may
// keep its page cache across opens.
func (n *file) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	if !req.Flags.IsReadOnly() {
		return nil, syscall.EROFS
	}
	tt := n.tt
	if tt.closed() {
		return nil, syscall.EIO
	}
	h, err := reader.New(tt.t, n.index, tt.fs.opts.Reader)
	if err != nil {
		tt.fs.log.Errorf("open %s: %v", tt.info.DisplayPath(&tt.info.Files[n.index]), err)
		return nil, syscall.EIO
	}
	resp.Flags |= fuse.OpenKeepCache
	hd := &handle{file: n, head: h}
	tt.fs.log.WithField("path", hd.path()).Debug("open")
	return hd, nil
}

// slowRead: reads that waited this long are logged at debug level.
const slowRead = 5 * time.Millisecond

// handle is one open file.
type handle struct {
	file *file
	head *reader.Head
}

// errShutdown is the cause of reads cancelled by FS.Close.
var errShutdown = errors.New("file system is shutting down")

// Read fills the kernel's request. An interrupted read returns EINTR and abandons only its
// own wait; the head's wants stay, so the retry finds the pieces on their way.
func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	tt := h.file.tt
	f := tt.fs
	ctx, cancel := tt.readContext(ctx)
	defer cancel()
	buf := make([]byte, req.Size)
	began := time.Now()
	n, err := h.head.ReadAt(ctx, buf, req.Offset)
	if waited := time.Since(began); waited >= slowRead && f.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		// What a viewer waited for, read by read: the timeline of a player's start-up.
		f.log.WithFields(logrus.Fields{"path": h.path(), "offset": req.Offset, "size": req.Size, "waited": waited.Round(time.Millisecond), "err": err}).Debug("read waited")
	}
	if err == nil || errors.Is(err, io.EOF) {
		resp.Data = buf[:n]
		return nil
	}
	switch {
	case tt.closed() || errors.Is(context.Cause(ctx), errShutdown):
		return syscall.EIO
	case errors.Is(err, context.DeadlineExceeded):
		f.log.Warnf("read %d bytes at %d of %s: no data after %v", req.Size, req.Offset, h.path(), f.opts.ReadTimeout)
		return syscall.EIO
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, syscall.ENOSPC):
		// The pieces under the read cannot fit in the cache's disk: say so, not EIO.
		f.log.Warnf("read %d bytes at %d of %s: %v", req.Size, req.Offset, h.path(), err)
		return syscall.ENOSPC
	}
	f.log.Errorf("read %d bytes at %d of %s: %v", req.Size, req.Offset, h.path(), err)
	return syscall.EIO
}

func (h *handle) path() string {
	tt := h.file.tt
	return tt.Name() + "/" + tt.info.DisplayPath(&tt.info.Files[h.file.index])
}

// readContext adds the read timeout, FS.Close and Torrent.Remove to a read's context.
func (tt *Torrent) readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancelTimeout := context.CancelFunc(func() {})
	if rt := tt.fs.opts.ReadTimeout; rt > 0 {
		ctx, cancelTimeout = context.WithTimeout(ctx, rt)
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-tt.fs.closing:
			cancelCause(errShutdown)
		case <-tt.closing:
			cancelCause(errShutdown)
		case <-stop:
		}
	}()
	return ctx, func() {
		close(stop)
		cancelTimeout()
		cancelCause(nil)
	}
}

func (h *handle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	return h.head.Close()
}

var (
	_ bfs.Node            = (*file)(nil)
	_ bfs.NodeOpener      = (*file)(nil)
	_ bfs.NodeGetxattrer  = (*file)(nil)
	_ bfs.NodeListxattrer = (*file)(nil)
	_ bfs.HandleReader    = (*handle)(nil)
	_ bfs.HandleReleaser  = (*handle)(nil)
)
