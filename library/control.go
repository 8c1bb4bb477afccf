package library

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// The control protocol: a client connects to the mount's Unix socket, writes one JSON
// Request and reads one JSON Response. Only the socket's owner (or root) is answered: the
// socket lives in a directory only its owner can enter, and the server checks the peer's
// credentials too.

// Request is one control command.
type Request struct {
	Op       string `json:"op"` // "add", "rm" or "ls"
	Torrents []Spec `json:"torrents,omitempty"`
	Key      string `json:"key,omitempty"` // rm: name or info-hash
	Delete   bool   `json:"delete,omitempty"`
}

// Response answers a Request. Error is set when nothing was done; for add, Errors lists
// the specs that failed (by index) while the others were added.
type Response struct {
	Error    string   `json:"error,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Torrents []Status `json:"torrents,omitempty"`
}

// maxRequest bounds a request: a few torrent files of a few MiB each.
const maxRequest = 64 << 20

// SocketPath is the control socket of the mount at mountpoint (an absolute path): in
// $XDG_RUNTIME_DIR/torrentfs, else in a per-user directory under the temporary directory,
// named by a hash of the mount point so any path length fits.
func SocketPath(mountpoint string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(mountpoint)))
	return filepath.Join(socketDir(), "ctl-"+hex.EncodeToString(sum[:10])+".sock")
}

func socketDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "torrentfs")
	}
	return filepath.Join(os.TempDir(), "torrentfs-"+strconv.Itoa(os.Getuid()))
}

// privateDir makes sure dir exists, belongs to us and only we can enter it: the socket in
// it must not be reachable, or replaceable, by other users.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("control socket directory %s is not a directory of ours", dir)
	}
	if st.Mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("control socket directory %s is open to others: %w", dir, err)
		}
	}
	return nil
}

// ControlServer answers control requests for a library.
type ControlServer struct {
	path string
	ln   *net.UnixListener
	lib  *Library
	log  *logrus.Entry
	done chan struct{}
}

// ListenControl serves lib's control socket at path until Close. A socket left by a
// process that died is replaced; one that answers is another mount's, and an error.
func ListenControl(path string, lib *Library, log *logrus.Entry) (*ControlServer, error) {
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use by another process", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The directory already keeps others out; the socket's own mode says so too.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	s := &ControlServer{path: path, ln: ln, lib: lib, log: log, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Close stops answering and removes the socket.
func (s *ControlServer) Close() {
	s.ln.Close()
	<-s.done
}

func (s *ControlServer) serve() {
	defer close(s.done)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.WithError(err).Warn("control socket")
			}
			return
		}
		go s.handle(c)
	}
}

func (s *ControlServer) handle(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if uid, err := peerUID(c); err != nil || uid != os.Getuid() && uid != 0 {
		s.log.Warnf("control socket: refused a connection from uid %d (%v)", uid, err)
		return
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		json.NewEncoder(c).Encode(Response{Error: "bad request: " + err.Error()})
		return
	}
	json.NewEncoder(c).Encode(s.lib.Do(req))
}

func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// Do carries out one control request.
func (l *Library) Do(req Request) Response {
	switch req.Op {
	case "ls":
		return Response{Torrents: l.List()}
	case "add":
		if len(req.Torrents) == 0 {
			return Response{Error: "add: nothing to add"}
		}
		var resp Response
		for i, spec := range req.Torrents {
			e, err := l.Add(spec)
			if err != nil {
				resp.Errors = append(resp.Errors, fmt.Sprintf("%s: %v", specName(spec, i), err))
				continue
			}
			resp.Torrents = append(resp.Torrents, e.Status())
		}
		if len(resp.Torrents) == 0 {
			resp.Error = "nothing added"
		}
		return resp
	case "rm":
		e, err := l.Remove(req.Key, req.Delete)
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{Torrents: []Status{{Name: e.Name(), InfoHash: e.shown, Origin: e.Origin, State: "removed"}}}
	}
	return Response{Error: fmt.Sprintf("unknown operation %q", req.Op)}
}

func specName(s Spec, i int) string {
	if s.Origin != "" {
		return s.Origin
	}
	return "#" + strconv.Itoa(i+1)
}

// Call sends req to the control socket of the mount at mountpoint and returns the answer.
func Call(mountpoint string, req Request) (*Response, error) {
	path := SocketPath(mountpoint)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no torrentfs mount at %s answers (socket %s)", mountpoint, path)
		}
		return nil, fmt.Errorf("control socket of %s: %w", mountpoint, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("control socket of %s: %w", mountpoint, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control socket of %s: no answer: %w", mountpoint, err)
	}
	return &resp, nil
}
