package main

// The library: several torrents in one mount or one HTTP server, added and removed while
// running (torrentfs add/rm/ls, --watch). Package library keeps the set; this file gives
// it the engine (libEngine) and shows its torrents (libView).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/cache"
	mountfs "torrentfs/fs"
	"torrentfs/httpserve"
	"torrentfs/library"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// libEngine starts the library's torrents on the process's one engine, each with its
// cache in its own directory <cacheDir>/<infohash>.
type libEngine struct {
	e         *engine
	flags     *engineFlags
	cacheDir  string // "" = the per-user default
	cacheSize int64
	pool      *swarm.CachePool // shares cacheSize among the torrents; nil when unbounded
	log       *logrus.Entry
}

// newLibEngine is the engine of a library with cacheSize bytes of cache for all its
// torrents together (0: unbounded). Close stops its pool.
func newLibEngine(e *engine, flags *engineFlags, cacheDir string, cacheSize int64, log *logrus.Entry) *libEngine {
	le := &libEngine{e: e, flags: flags, cacheDir: cacheDir, cacheSize: cacheSize, log: log}
	if cacheSize > 0 {
		le.pool = swarm.NewCachePool(cacheSize)
	}
	return le
}

func (le *libEngine) Close() {
	if le.pool != nil {
		le.pool.Close()
	}
}

func (le *libEngine) FetchMetadata(ctx context.Context, m *metainfo.Magnet) (*metainfo.MetaInfo, error) {
	cfg, err := le.flags.torrentConfig(nil)
	if err != nil {
		return nil, err
	}
	var trackers []string // nil: the magnet's
	if cfg.Trackers != nil {
		trackers = []string{}
		for _, tier := range cfg.Trackers {
			trackers = append(trackers, tier...)
		}
	}
	le.log.Infof("fetching metadata of %s...", hashText(m.InfoHash, m.InfoHashV2))
	return le.e.FetchMetadata(ctx, m, cfg.Peers, trackers)
}

func (le *libEngine) Start(ctx context.Context, mi *metainfo.MetaInfo, m *metainfo.Magnet, progress func(done, total int)) (*library.Started, error) {
	if err := library.Transferable(mi); err != nil {
		return nil, err
	}
	if _, err := windowFor(le.cacheSize, &mi.Info); err != nil {
		return nil, err
	}
	dir, err := torrentCacheDir(le.cacheDir, mi.SwarmHash())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	tlog := le.log.WithField("torrent", mi.Info.Name)
	store, have, err := openChecked(ctx, dir, mi, cache.Options{StateFile: filepath.Join(dir, cacheStateFile), Log: tlog}, progress)
	if err != nil {
		return nil, err
	}
	t, err := le.flags.addTorrent(le.e, mi, store, have, func(cfg *swarm.TorrentConfig) {
		cfg.CacheBytes = le.cacheSize
		cfg.Pool = le.pool
		cfg.NoBackground = le.cacheSize > 0
		cfg.ForReaders = true // mounted or served over HTTP
		if m != nil {
			// The magnet's own peers are often the only ones known (no trackers).
			for _, pe := range m.Peers {
				if ap, err := netip.ParseAddrPort(pe); err == nil {
					cfg.Peers = append(cfg.Peers, ap)
				}
			}
		}
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	tlog.Infof("started %s (%s); cache %s holds %d of %d pieces", mi.Info.Name, hashText(mi.InfoHash, mi.InfoHashV2), dir, have.Count(), mi.Info.NumPieces())
	return &library.Started{T: t, Dir: dir, Close: func() { store.Close() }}, nil
}

// torrentCacheDir is <base>/<infohash> (the swarm's: a v2-only torrent's truncated v2 one),
// base defaulting to $XDG_CACHE_HOME/torrentfs.
func torrentCacheDir(base string, ih metainfo.Hash) (string, error) {
	if base == "" {
		return defaultCacheDir(ih)
	}
	return filepath.Join(base, ih.HexString()), nil
}

// libView shows the library in the mount (fsys, may be nil) and over HTTP (http, may be
// nil). Its map of directories is guarded by mu.
type libView struct {
	fsys *mountfs.FS
	http *httpserve.Server
	log  *logrus.Entry

	mu   sync.Mutex
	dirs map[metainfo.Hash]*mountfs.Torrent
	// stats of torrents removed, for the session summary at exit
	gone []sessionStats
}

type sessionStats struct {
	name  string
	stats swarm.Stats
}

func newLibView(fsys *mountfs.FS, http *httpserve.Server, log *logrus.Entry) *libView {
	return &libView{fsys: fsys, http: http, log: log, dirs: map[metainfo.Hash]*mountfs.Torrent{}}
}

func (v *libView) Added(e *library.Entry) {
	if v.fsys == nil {
		return
	}
	var mtime time.Time
	if mi := e.MetaInfo(); mi != nil && mi.CreationDate > 0 {
		mtime = time.Unix(mi.CreationDate, 0)
	}
	d := v.fsys.Add(e.Name(), mtime)
	v.mu.Lock()
	v.dirs[e.Hash] = d
	v.mu.Unlock()
}

func (v *libView) Ready(e *library.Entry) {
	t := e.Torrent()
	v.mu.Lock()
	d := v.dirs[e.Hash]
	v.mu.Unlock()
	if d != nil {
		d.Rename(e.Name())
		d.Show(t)
	}
	if v.http != nil {
		v.http.Add(httpTorrent{t})
	}
}

func (v *libView) Removed(e *library.Entry) {
	v.mu.Lock()
	d := v.dirs[e.Hash]
	delete(v.dirs, e.Hash)
	v.mu.Unlock()
	if d != nil {
		d.Remove()
	}
	if v.http != nil {
		v.http.Remove(e.Hash)
	}
	if t := e.Torrent(); t != nil {
		v.mu.Lock()
		v.gone = append(v.gone, sessionStats{e.Name(), t.Stats()})
		v.mu.Unlock()
	}
}

// logSessions logs what each torrent that ran this session moved.
func (v *libView) logSessions(log *logrus.Entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.gone {
		logSession(log.WithField("torrent", s.name), s.stats)
	}
}

// readSpec turns a command-line argument into something to add: a magnet link, or a
// .torrent file read here (so the process serving the library need not see the path).
func readSpec(arg string) (library.Spec, error) {
	if metainfo.IsMagnet(arg) {
		if _, err := metainfo.ParseMagnet(arg); err != nil {
			return library.Spec{}, err
		}
		return library.Spec{Magnet: arg, Origin: "magnet"}, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return library.Spec{}, err
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		return library.Spec{}, fmt.Errorf("%s: %w", arg, err)
	}
	if err := library.Transferable(mi); err != nil {
		return library.Spec{}, err
	}
	abs, _ := filepath.Abs(arg)
	return library.Spec{Torrent: b, Origin: abs}, nil
}

// readSpecs reads every argument, checking .torrent files against the cache bound, so a
// bad one fails before anything starts.
func readSpecs(args []string, cacheSize int64) ([]library.Spec, error) {
	var specs []library.Spec
	for _, a := range args {
		spec, err := readSpec(a)
		if err != nil {
			return nil, err
		}
		if err := checkSpec(spec, cacheSize); err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// libStatusLine prints the library's totals once a second on a terminal until ctx ends.
func libStatusLine(ctx context.Context, lib *library.Library) {
	statusLineOf(ctx, os.Stderr, func() string {
		var sum swarm.Stats
		n := 0
		for _, e := range lib.Entries() {
			if t := e.Torrent(); t != nil {
				s := t.Stats()
				n++
				sum.Total += s.Total
				sum.BytesDone += s.BytesDone
				sum.Peers += s.Peers
				sum.Seeds += s.Seeds
				sum.DownRate += s.DownRate
				sum.UpRate += s.UpRate
				sum.Uploaded += s.Uploaded
				sum.WebSeeds += s.WebSeeds
			}
		}
		if n == 1 {
			return formatStats(sum)
		}
		return fmt.Sprintf("%d torrents  %s", n, formatStats(sum))
	})
}

func init() {
	register(&command{
		name:  "add",
		args:  "MOUNTPOINT FILE.torrent|MAGNET...",
		short: "add torrents to a running mount",
		long: `Adds torrents to the mount at MOUNTPOINT without unmounting: each appears as a
directory at once (a magnet's files once its metadata is in). The mount's process is
reached through its control socket, which only the user who mounted can use.`,
		setup: func(fset *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) < 2 {
					return usagef("want a mount point and at least one .torrent file or magnet link")
				}
				req := library.Request{Op: "add"}
				for _, a := range args[1:] {
					spec, err := readSpec(a)
					if err != nil {
						return err
					}
					req.Torrents = append(req.Torrents, spec)
				}
				resp, err := callMount(args[0], req)
				for _, s := range resp.Torrents {
					fmt.Fprintf(cmdStdout, "added %s (%s)\n", s.Name, s.InfoHash)
				}
				for _, e := range resp.Errors {
					fmt.Fprintf(os.Stderr, "torrentfs add: %s\n", e)
				}
				if err == nil && len(resp.Errors) > 0 {
					err = fmt.Errorf("%d of %d not added", len(resp.Errors), len(req.Torrents))
				}
				return err
			}
		},
	})
	register(&command{
		name:  "rm",
		args:  "MOUNTPOINT NAME|INFOHASH",
		short: "remove a torrent from a running mount",
		long: `Stops the torrent and takes its directory out of the mount at MOUNTPOINT. Files of
it still open fail their next read. The cache stays for next time unless --delete.
NAME is the torrent's directory name; an info-hash may be abbreviated to 8 or more digits.`,
		setup: func(fset *flag.FlagSet) func([]string) error {
			del := fset.Bool("delete", false, "delete the torrent's cache too")
			return func(args []string) error {
				if len(args) != 2 {
					return usagef("want a mount point and a torrent's name or info-hash")
				}
				resp, err := callMount(args[0], library.Request{Op: "rm", Key: args[1], Delete: *del})
				for _, s := range resp.Torrents {
					fmt.Fprintf(cmdStdout, "removed %s (%s)\n", s.Name, s.InfoHash)
				}
				return err
			}
		},
	})
	register(&command{
		name:  "ls",
		args:  "MOUNTPOINT",
		short: "list the torrents of a running mount",
		long:  `Lists the torrents of the mount at MOUNTPOINT: name, info-hash, size, progress, peers and rates.`,
		setup: func(fset *flag.FlagSet) func([]string) error {
			asJSON := fset.Bool("json", false, "print JSON")
			return func(args []string) error {
				if len(args) != 1 {
					return usagef("want a mount point")
				}
				resp, err := callMount(args[0], library.Request{Op: "ls"})
				if err != nil {
					return err
				}
				if *asJSON {
					enc := json.NewEncoder(cmdStdout)
					enc.SetIndent("", "  ")
					if resp.Torrents == nil {
						resp.Torrents = []library.Status{}
					}
					return enc.Encode(resp.Torrents)
				}
				tw := tabwriter.NewWriter(cmdStdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tINFOHASH\tSIZE\tDONE\tPEERS\tDOWN/s\tUP/s\tSTATE")
				for _, s := range resp.Torrents {
					state := s.State
					if s.Error != "" {
						state += ": " + s.Error
					}
					peers := strconv.Itoa(s.Peers)
					if s.WebSeeds > 0 {
						peers += fmt.Sprintf("+%d web", s.WebSeeds)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%s\t%s\t%s\t%s\n", s.Name, s.InfoHash[:16], humanBytes(s.Size),
						s.Progress*100, peers, humanBytes(int64(s.DownRate)), humanBytes(int64(s.UpRate)), state)
				}
				return tw.Flush()
			}
		},
	})
}

// callMount sends req to the mount at mountpoint; a refusal is returned as an error, with
// the response (never nil) holding whatever was done.
func callMount(mountpoint string, req library.Request) (*library.Response, error) {
	mnt, err := filepath.Abs(mountpoint)
	if err != nil {
		return &library.Response{}, err
	}
	resp, err := library.Call(mnt, req)
	if err != nil {
		return &library.Response{}, err
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
