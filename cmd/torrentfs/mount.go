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

	"torrentfs/cache"
	mountfs "torrentfs/fs"
	"torrentfs/httpserve"
	"torrentfs/metainfo"
	"torrentfs/reader"
	"torrentfs/swarm"
)

// The engine's torrent is what read heads read from.
var _ reader.Torrent = (*swarm.Torrent)(nil)

func init() {
	register(&command{
		name:  "mount",
		args:  "FILE.torrent|MAGNET MOUNTPOINT",
		short: "show a torrent as a read-only directory, streaming on demand",
		long: `Mounts the torrent's files read-only at MOUNTPOINT (MOUNTPOINT/<name>, or
MOUNTPOINT/<name>/<path...> for several files) at once, before any peer is found. Reading
a file fetches the pieces under the read first, then a readahead window sized to the read
rate, so players and cp work straight from the mount; the rest downloads rarest-first in
the background and is uploaded to peers all along.

Pieces are kept in --cache-dir, reused by the next mount. --cache-size 0 keeps everything
(the mount ends up a full seed); a size bounds the cache: least recently read pieces are
evicted and nothing downloads unless read.

A magnet link works too, but its file tree is only known once a peer has sent the
metadata (BEP 9): the mount appears after that, not at once.

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
}

func setupMount(fset *flag.FlagSet) func([]string) error {
	var mf mountFlags
	mf.engine.register(fset)
	fset.StringVar(&mf.cacheDir, "cache-dir", "", "where pieces are kept (default $XDG_CACHE_HOME/torrentfs/<infohash>, else ~/.cache/...)")
	fset.Var(&mf.cacheSize, "cache-size", "bound on cached bytes (e.g. 2G); 0 = keep everything and download it all")
	fset.DurationVar(&mf.readTimeout, "read-timeout", 0, "fail a read with EIO after waiting this long for data; 0 = wait forever")
	fset.BoolVar(&mf.allowOther, "allow-other", false, "let other users read the mount (non-root needs user_allow_other in /etc/fuse.conf)")
	fset.IntVar(&mf.uid, "uid", os.Getuid(), "owner of the files")
	fset.IntVar(&mf.gid, "gid", os.Getgid(), "group of the files")
	fset.StringVar(&mf.http, "http", "", "also serve the torrent over HTTP on `ADDR` (e.g. 127.0.0.1:8080; see torrentfs serve --help); empty = off")
	return func(args []string) error {
		if len(args) != 2 {
			return usagef("want a .torrent file and a mount point")
		}
		if mf.uid < 0 || mf.gid < 0 {
			return usagef("--uid and --gid must not be negative")
		}
		return runMount(args[0], args[1], &mf)
	}
}

func runMount(torrentArg, mountArg string, mf *mountFlags) error {
	log := logrus.WithField("cmd", "mount")
	mnt, err := filepath.Abs(mountArg)
	if err != nil {
		return err
	}
	if err := checkMountpoint(mnt, log); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := mf.engine.newClient(log)
	if err != nil {
		return err
	}
	defer c.Close()
	mi, err := loadTorrent(ctx, torrentArg, c.Client, &mf.engine)
	if err != nil {
		return err
	}
	maxWindow, err := windowFor(int64(mf.cacheSize), &mi.Info)
	if err != nil {
		return err
	}
	dir := mf.cacheDir
	if dir == "" {
		if dir, err = defaultCacheDir(mi.InfoHash); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	store, haveSet, err := openStorage(ctx, dir, mi, cache.Options{
		StateFile: filepath.Join(dir, cacheStateFile),
		Log:       log,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	have := haveSet.Count()
	t, err := mf.engine.addTorrent(c, mi, store, haveSet, func(cfg *swarm.TorrentConfig) {
		cfg.CacheBytes = int64(mf.cacheSize)
		cfg.NoBackground = mf.cacheSize > 0
	})
	if err != nil {
		return err
	}
	mtime := time.Now()
	if mi.CreationDate > 0 {
		mtime = time.Unix(mi.CreationDate, 0)
	}
	fsys := mountfs.New(t, mountfs.Options{
		UID:         uint32(mf.uid),
		GID:         uint32(mf.gid),
		MTime:       mtime,
		ReadTimeout: mf.readTimeout,
		Reader:      reader.Options{MaxWindow: maxWindow},
		Log:         log,
	})
	var hs *httpListener
	if mf.http != "" {
		// Listening first: a busy address fails before anything is mounted.
		if hs, err = startHTTP(mf.http, httpserve.New(httpserve.Options{Reader: reader.Options{MaxWindow: maxWindow}, Log: log}, httpTorrent{t}), log); err != nil {
			return err
		}
	}
	srv, err := mountfs.Mount(mnt, fsys, mountfs.MountOptions{AllowOther: mf.allowOther})
	if err != nil {
		if hs != nil {
			hs.close()
		}
		return err
	}
	log.Infof("mounted %s (%s) at %s; cache %s holds %d of %d pieces", mi.Info.Name, mi.InfoHash, mnt, dir, have, mi.Info.NumPieces())
	if hs != nil {
		fmt.Fprintf(cmdStdout, "serving http at %s\n", hs.url())
	}
	fmt.Fprintf(cmdStdout, "mounted %s at %s (port %d)\n", mi.Info.Name, mnt, c.Port())

	sctx, stopStatus := context.WithCancel(ctx)
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		statusLine(sctx, os.Stderr, t)
	}()
	select {
	case <-ctx.Done():
		log.Info("unmounting")
	case <-srv.Done():
		log.Info("unmounted from outside")
	}
	stopStatus()
	<-statusDone
	if hs != nil {
		hs.close()
	}
	uctx, cancel := context.WithTimeout(context.Background(), unmountGrace)
	uerr := srv.Unmount(uctx)
	cancel()
	s := t.Stats()
	t.Close()
	c.Close()
	log.Info("stopped")
	logSession(log, s)
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
