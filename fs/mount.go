package fs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
)

// MountOptions are the mount's kernel-facing options.
type MountOptions struct {
	// AllowOther lets users other than the mounting one see the files. A non-root user
	// needs user_allow_other in /etc/fuse.conf for it.
	AllowOther bool
}

// maxReadahead is asked of the kernel; it keeps the lower of this and its own limit.
const maxReadahead = 1 << 20

// Server is a mounted FS being served.
type Server struct {
	dir  string
	fs   *FS
	conn *fuse.Conn
	done chan struct{} // closed when the serve loop has returned
	err  error         // the serve loop's error; read after done
}

// fuseConf is where fusermount3 reads user_allow_other; a variable for tests.
var fuseConf = "/etc/fuse.conf"

// Mount mounts f read-only at dir and serves it in a goroutine until the file system is
// unmounted, by Unmount or from outside (fusermount3 -u).
func Mount(dir string, f *FS, mo MountOptions) (*Server, error) {
	opts := []fuse.MountOption{
		fuse.FSName("torrentfs"),
		fuse.Subtype("torrentfs"),
		fuse.ReadOnly(),
		fuse.MaxReadahead(maxReadahead),
		// Several reads of one handle in flight: kernel readahead does not wait for the
		// read the process is blocked on.
		fuse.AsyncRead(),
	}
	if mo.AllowOther {
		if err := checkAllowOther(os.Geteuid(), fuseConf); err != nil {
			return nil, err
		}
		opts = append(opts, fuse.AllowOther())
	}
	conn, err := fuse.Mount(dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	s := &Server{dir: dir, fs: f, conn: conn, done: make(chan struct{})}
	bs := bfs.New(conn, nil)
	f.mu.Lock()
	f.server = bs
	f.mu.Unlock()
	go func() {
		defer close(s.done)
		s.err = bs.Serve(f)
	}()
	return s, nil
}

// checkAllowOther explains up front what fusermount3 would refuse with a terse message.
func checkAllowOther(euid int, conf string) error {
	if euid == 0 {
		return nil
	}
	fh, err := os.Open(conf)
	if err == nil {
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "user_allow_other" {
				return nil
			}
		}
	}
	return fmt.Errorf("--allow-other needs a line user_allow_other in %s (or running as root)", conf)
}

// Done is closed when the file system is no longer served.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the serve loop's error, once Done is closed.
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// Dir is the mount point.
func (s *Server) Dir() string { return s.dir }

// Unmount fails blocked reads with EIO, unmounts and waits for the serve loop. Readers
// that just got EIO may still hold files open for a moment, so a busy unmount is retried,
// then done lazily (detached now, gone when the last file closes). It returns when the
// loop has stopped or ctx ends.
func (s *Server) Unmount(ctx context.Context) error {
	s.fs.Close()
	defer s.conn.Close()
	var err error
	for try := 0; ; try++ {
		select {
		case <-s.done:
			return nil
		default:
		}
		if err = fuse.Unmount(s.dir); err == nil {
			break
		}
		if try == 10 {
			if out, lerr := exec.Command("fusermount3", "-u", "-z", s.dir).CombinedOutput(); lerr != nil {
				err = fmt.Errorf("unmount %s: %v; lazy unmount: %s", s.dir, err, strings.TrimSpace(string(out)))
			} else {
				err = nil
			}
			break
		}
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("unmount %s: %w", s.dir, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("unmount %s: serve loop did not stop: %w", s.dir, ctx.Err())
	}
}
