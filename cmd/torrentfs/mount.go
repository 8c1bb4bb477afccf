package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	mountfs "torrentfs/fs"
	"torrentfs/httpserve"
	"torrentfs/library"
	"torrentfs/metainfo"
	"torrentfs/reader"
	"torrentfs/swarm"
)

// The engine's torrent is what read heads read from.
var _ reader.Torrent = (*swarm.Torrent)(nil)

func init() {
	register(&command{
		name:  "mount",
		args:  "[FILE.torrent|MAGNET...] MOUNTPOINT",
		short: "show torrents as read-only directories, streaming on demand",
		long: `Mounts torrents read-only at MOUNTPOINT, one directory per torrent:
MOUNTPOINT/<name>/<path...> (MOUNTPOINT/<name>/<name> for a single-file torrent). The
directories appear at once, before any peer is found; a magnet link's files appear when a
peer has sent its metadata (BEP 9). Reading a file fetches the pieces under the read
first, then a readahead window sized to the read rate, so players and cp work straight
from the mount; the rest downloads rarest-first in the background and is uploaded to
peers all along.

While mounted, "torrentfs add MOUNTPOINT TORRENT|MAGNET...", "torrentfs rm MOUNTPOINT
NAME" and "torrentfs ls MOUNTPOINT" change and list the torrents; --watch DIR adds the
.torrent and .magnet (a file holding a link) files that appear in DIR and removes their
torrents when they are deleted. With --http, --http-token lets HTTP requests carrying the
token add and remove torrents too (see torrentfs serve --help). All torrents share one
listen port, one DHT node and the cache settings.

Pieces are kept in --cache-dir/<infohash>, reused by the next mount. --cache-size 0 keeps
everything (the mount ends up a full seed); a size bounds the cache of all torrents
together: the least recently read pieces of any torrent are evicted and nothing
downloads unless read.

Stop with Ctrl-C, SIGTERM, "torrentfs umount MOUNTPOINT" or "fusermount3 -u MOUNTPOINT".`,
		setup: setupMount,
	})
}

// cacheStateFile is the resume file inside a cache directory, beside the torrent's data.
const cacheStateFile = ".torrentfs-resume"

// unmountGrace bounds the wait for the serve loop at shutdown, so the process exits
// within 2 s of a signal even when readers hold files open.
const unmountGrace = 1500 * time.Millisecond

type mountFlags struct {
	engine      engineFlags
	cacheDir    string
	cacheSize   sizeFlag
	readTimeout time.Duration
	allowOther  bool
	uid, gid    int
	http        string
	token       tokenFlags
	watch       string
}

func setupMount(fset *flag.FlagSet) func([]string) error {
	var mf mountFlags
	mf.engine.register(fset)
	fset.StringVar(&mf.cacheDir, "cache-dir", "", "where pieces are kept, in a directory per info-hash (default $XDG_CACHE_HOME/torrentfs, else ~/.cache/torrentfs)")
	fset.Var(&mf.cacheSize, "cache-size", "bound on the cached bytes of all torrents together (e.g. 2G; least recently read pieces of any torrent go first); 0 = keep everything and download it all")
	fset.DurationVar(&mf.readTimeout, "read-timeout", 0, "fail a read with EIO after waiting this long for data; 0 = wait forever")
	fset.BoolVar(&mf.allowOther, "allow-other", false, "let other users read the mount (non-root needs user_allow_other in /etc/fuse.conf)")
	fset.IntVar(&mf.uid, "uid", os.Getuid(), "owner of the files")
	fset.IntVar(&mf.gid, "gid", os.Getgid(), "group of the files")
	fset.StringVar(&mf.http, "http", "", "also serve the torrents over HTTP on `ADDR` (e.g. 127.0.0.1:8080; see torrentfs serve --help); empty = off")
	mf.token.register(fset)
	fset.StringVar(&mf.watch, "watch", "", "add the torrents of the .torrent and .magnet files in `DIR`, and remove them when their files are deleted")
	return func(args []string) error {
		if len(args) < 1 || len(args) == 1 && mf.watch == "" {
			return usagef("want a .torrent file and a mount point (or several torrents and magnet links, or --watch DIR)")
		}
		if mf.uid < 0 || mf.gid < 0 {
			return usagef("--uid and --gid must not be negative")
		}
		if mf.token.set() && mf.http == "" {
			return usagef("--http-token needs --http")
		}
		return runMount(args[:len(args)-1], args[len(args)-1], &mf)
	}
}

func runMount(torrentArgs []string, mountArg string, mf *mountFlags) error {
	log := logrus.WithField("cmd", "mount")
	mnt, err := filepath.Abs(mountArg)
	if err != nil {
		return err
	}
	if err := checkMountpoint(mnt, log); err != nil {
		return err
	}
	// Every argument is read and parsed first: a bad one fails before anything starts.
	specs, err := readSpecs(torrentArgs, int64(mf.cacheSize))
	if err != nil {
		return err
	}
	token, err := mf.token.get()
	if err != nil {
		return err
	}
	maxWindow := int64(mf.cacheSize) / 4
	ctx, stop := signalContext()
	defer stop()
	c, err := mf.engine.newClient(log)
	if err != nil {
		return err
	}
	defer c.Close()
	fsys := mountfs.New(mountfs.Options{
		UID:         uint32(mf.uid),
		GID:         uint32(mf.gid),
		ReadTimeout: mf.readTimeout,
		Reader:      reader.Options{MaxWindow: maxWindow},
		Log:         log,
	})
	var (
		hsrv *httpserve.Server
		hs   *httpListener
		hctl = &httpControl{cacheSize: int64(mf.cacheSize)}
	)
	if mf.http != "" {
		hopts := httpserve.Options{Reader: reader.Options{MaxWindow: maxWindow}, Log: log}
		if token != "" {
			hopts.Control, hopts.Token = hctl, token
		}
		hsrv = httpserve.New(hopts)
	}
	view := newLibView(fsys, hsrv, log)
	le := newLibEngine(c, &mf.engine, mf.cacheDir, int64(mf.cacheSize), log)
	defer le.Close()
	lib := library.New(le, view, log)
	defer lib.Close()
	hctl.lib = lib
	if hsrv != nil {
		// Listening before any torrent starts: a busy address fails before anything is
		// mounted or fetched.
		if hs, err = startHTTP(mf.http, hsrv, log); err != nil {
			return err
		}
		defer hs.close()
	}
	for _, spec := range specs {
		if _, err := lib.Add(spec); err != nil {
			return fmt.Errorf("%s: %w", spec.Origin, err)
		}
	}
	srv, err := mountfs.Mount(mnt, fsys, mountfs.MountOptions{AllowOther: mf.allowOther})
	if err != nil {
		return err
	}
	ctl, err := library.ListenControl(library.SocketPath(mnt), lib, log)
	if err != nil {
		log.WithError(err).Warn("torrentfs add, rm and ls will not reach this mount")
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	if mf.watch != "" {
		w, err := library.NewWatcher(mf.watch, lib, 0, log)
		if err != nil {
			stopWatch()
			uctx, cancel := context.WithTimeout(context.Background(), unmountGrace)
			srv.Unmount(uctx)
			cancel()
			return err
		}
		go func() {
			defer close(watchDone)
			w.Run(wctx)
		}()
	} else {
		close(watchDone)
	}
	if hs != nil {
		fmt.Fprintf(cmdStdout, "serving http at %s\n", hs.url())
	}
	entries := lib.Entries()
	what := fmt.Sprintf("%d torrents", len(entries))
	if len(entries) == 1 {
		what = entries[0].Name()
	}
	log.Infof("mounted %s at %s", what, mnt)
	fmt.Fprintf(cmdStdout, "mounted %s at %s (port %d)\n", what, mnt, c.Port())

	sctx, stopStatus := context.WithCancel(ctx)
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		libStatusLine(sctx, lib)
	}()
	select {
	case <-ctx.Done():
		log.Info("unmounting")
	case <-srv.Done():
		log.Info("unmounted from outside")
	}
	stopStatus()
	<-statusDone
	stopWatch()
	<-watchDone
	if ctl != nil {
		ctl.Close()
	}
	if hs != nil {
		hs.close()
	}
	uctx, cancel := context.WithTimeout(context.Background(), unmountGrace)
	uerr := srv.Unmount(uctx)
	cancel()
	lib.Close()
	c.Close()
	log.Info("stopped")
	view.logSessions(log)
	if uerr != nil {
		return uerr
	}
	if err := srv.Err(); err != nil {
		return fmt.Errorf("serve %s: %w", mnt, err)
	}
	return nil
}

// windowFor is the read heads' largest window: unbounded without a cache bound, else a
// quarter of the cache, since each open file pins its window, a probe and its head and
// tail, and evicting a pinned piece is impossible.
func windowFor(cacheSize int64, info *metainfo.Info) (int64, error) {
	if cacheSize == 0 {
		return 0, nil
	}
	if least := 8 * info.PieceLength; cacheSize < least {
		return 0, fmt.Errorf("--cache-size %s is too small for %s pieces: give at least %s", humanBytes(cacheSize), humanBytes(info.PieceLength), humanBytes(least))
	}
	return cacheSize / 4, nil
}

func defaultCacheDir(ih metainfo.Hash) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory (give --cache-dir): %w", err)
	}
	return filepath.Join(base, "torrentfs", ih.HexString()), nil
}

// checkMountpoint wants an existing empty directory. A stale FUSE mount left by a killed
// process ("transport endpoint is not connected") is detached first.
func checkMountpoint(dir string, log *logrus.Entry) error {
	_, err := os.Stat(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		log.Warnf("%s is a stale mount left by a process that died; detaching it", dir)
		if out, uerr := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); uerr != nil {
			return fmt.Errorf("%s is a stale mount (transport endpoint is not connected) and fusermount3 -u -z failed: %s", dir, strings.TrimSpace(string(out)))
		}
		_, err = os.Stat(dir)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist (create it with mkdir)", dir)
	case err != nil:
		return fmt.Errorf("mount point: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	if len(names) > 0 {
		if isMounted(dir) {
			return fmt.Errorf("%s is already a mount point (unmount it with torrentfs umount)", dir)
		}
		return fmt.Errorf("mount point %s is not empty", dir)
	}
	return nil
}

// isMounted tells whether dir is listed in /proc/mounts.
func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && unescapeMount(f[1]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes /proc/mounts' octal escapes of space, tab, newline and backslash.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
