package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/cache"
	"torrentfs/httpserve"
	"torrentfs/reader"
	"torrentfs/swarm"
)

func init() {
	register(&command{
		name:  "serve",
		args:  "FILE.torrent|MAGNET...",
		short: "stream torrents over HTTP, without a mount",
		long: `Joins the swarm of each torrent and serves their files over HTTP until Ctrl-C:
  /                             status page with live piece maps
  /stream/<infohash>/<path>     a file, with byte ranges (players can seek)
  /playlist.m3u                 every video and audio file, for a player
  /playlist/<infohash>.m3u      one torrent's
  /api/torrents                 the status as JSON
  /metrics                      Prometheus metrics
Reading a stream fetches the pieces under it first, then a readahead window, as a read
from a mount does. Pieces are kept in --cache-dir/<infohash> (default
$XDG_CACHE_HOME/torrentfs/<infohash>), reused next time.

The server listens on 127.0.0.1 unless --http names another address; it has no
authentication, so think twice before exposing it.`,
		setup: setupServe,
	})
}

type serveFlags struct {
	engine    engineFlags
	http      string
	cacheDir  string
	cacheSize sizeFlag
}

func setupServe(fset *flag.FlagSet) func([]string) error {
	var sf serveFlags
	sf.engine.register(fset)
	fset.StringVar(&sf.http, "http", "127.0.0.1:8080", "`ADDR` to serve HTTP on")
	fset.StringVar(&sf.cacheDir, "cache-dir", "", "where pieces are kept, in a directory per info-hash (default $XDG_CACHE_HOME/torrentfs, else ~/.cache/torrentfs)")
	fset.Var(&sf.cacheSize, "cache-size", "bound on each torrent's cached bytes (e.g. 2G); 0 = keep everything and download it all")
	return func(args []string) error {
		if len(args) == 0 {
			return usagef("want at least one .torrent file or magnet link")
		}
		if sf.http == "" {
			return usagef("--http needs an address")
		}
		return runServe(args, &sf)
	}
}

func runServe(args []string, sf *serveFlags) error {
	log := logrus.WithField("cmd", "serve")
	ctx, stop := signalContext()
	defer stop()
	c, err := sf.engine.newClient(log)
	if err != nil {
		return err
	}
	defer c.Close()
	var (
		served  []httpserve.Torrent
		ropts   reader.Options
		running []*swarm.Torrent
	)
	defer func() {
		for _, t := range running {
			logSession(log.WithField("torrent", t.Info().Name), t.Stats())
			t.Close()
		}
	}()
	for _, arg := range args {
		t, store, window, err := sf.start(ctx, c, arg, log)
		if err != nil {
			return err
		}
		defer store.Close() // after the torrent closes: deferred calls run last-in first-out
		running = append(running, t)
		served = append(served, httpTorrent{t})
		if ropts.MaxWindow == 0 || window > 0 && window < ropts.MaxWindow {
			ropts.MaxWindow = window
		}
	}
	hs, err := startHTTP(sf.http, httpserve.New(httpserve.Options{Reader: ropts, Log: log}, served...), log)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmdStdout, "serving %d torrent(s) at %s (port %d)\n", len(served), hs.url(), c.Port())
	<-ctx.Done()
	log.Info("stopping")
	hs.close()
	return nil
}

// start loads one torrent, opens its cache under --cache-dir/<infohash> and adds it to c.
// window is the read heads' largest window for its cache bound (0: unbounded).
func (sf *serveFlags) start(ctx context.Context, c *engine, arg string, log *logrus.Entry) (*swarm.Torrent, *cache.Storage, int64, error) {
	mi, err := loadTorrent(ctx, arg, c.Client, &sf.engine)
	if err != nil {
		return nil, nil, 0, err
	}
	window, err := windowFor(int64(sf.cacheSize), &mi.Info)
	if err != nil {
		return nil, nil, 0, err
	}
	var dir string
	if sf.cacheDir != "" {
		dir = filepath.Join(sf.cacheDir, mi.InfoHash.HexString())
	} else if dir, err = defaultCacheDir(mi.InfoHash); err != nil {
		return nil, nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, 0, fmt.Errorf("create cache directory: %w", err)
	}
	tlog := log.WithField("torrent", mi.Info.Name)
	store, haveSet, err := openStorage(ctx, dir, mi, cache.Options{StateFile: filepath.Join(dir, cacheStateFile), Log: tlog})
	if err != nil {
		return nil, nil, 0, err
	}
	t, err := sf.engine.addTorrent(c, mi, store, haveSet, func(cfg *swarm.TorrentConfig) {
		cfg.CacheBytes = int64(sf.cacheSize)
		cfg.NoBackground = sf.cacheSize > 0
	})
	if err != nil {
		store.Close()
		return nil, nil, 0, err
	}
	tlog.Infof("serving %s (%s); cache %s holds %d of %d pieces", mi.Info.Name, mi.InfoHash, dir, haveSet.Count(), mi.Info.NumPieces())
	return t, store, window, nil
}

// httpTorrent shows the engine's torrent to the HTTP server.
type httpTorrent struct{ *swarm.Torrent }

func (t httpTorrent) Stats() httpserve.Stats {
	s := t.Torrent.Stats()
	return httpserve.Stats{
		PiecesDone: s.PiecesDone, Peers: s.Peers, Seeds: s.Seeds,
		Downloaded: s.Downloaded, Uploaded: s.Uploaded, DownRate: s.DownRate, UpRate: s.UpRate,
	}
}

var _ httpserve.Torrent = httpTorrent{}

// httpListener is a running HTTP server.
type httpListener struct {
	srv    *http.Server
	addr   net.Addr
	cancel context.CancelFunc // ends every request's context
	done   chan struct{}
}

// startHTTP serves h on addr in a goroutine.
func startHTTP(addr string, h http.Handler, log *logrus.Entry) (*httpListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	hl := &httpListener{addr: ln.Addr(), cancel: cancel, done: make(chan struct{})}
	hl.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          nil,
	}
	go func() {
		defer close(hl.done)
		if err := hl.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorf("http: %v", err)
		}
	}()
	log.Infof("serving HTTP at %s", hl.url())
	return hl, nil
}

func (hl *httpListener) url() string { return "http://" + hl.addr.String() + "/" }

// close stops the server: streams waiting for pieces are cancelled, connections closed.
func (hl *httpListener) close() {
	hl.cancel()
	hl.srv.Close()
	<-hl.done
}
