package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/httpserve"
	"torrentfs/library"
	"torrentfs/reader"
	"torrentfs/swarm"
)

func init() {
	register(&command{
		name:  "serve",
		args:  "[FILE.torrent|MAGNET...]",
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

With --http-token (or --http-token-file), requests carrying the token as
"Authorization: Bearer TOKEN" may change the torrents too:
  POST /api/torrents            add one: a .torrent file (application/x-bittorrent),
                                a magnet link (text/plain, or form field magnet), or a
                                multipart form's file "torrent"; answers 201 {name, infohash}
  DELETE /api/torrents/<name|infohash>[?delete=1]   remove one (and its cache)
e.g. curl -H "Authorization: Bearer $TOKEN" --data-binary @a.torrent \
       -H 'Content-Type: application/x-bittorrent' http://127.0.0.1:8080/api/torrents
Requests a browser sends from another site's page are refused. With a token, serve may
start with no torrent at all.

The server listens on 127.0.0.1 unless --http names another address. Reading needs no
authentication (anyone who reaches it can stream and list), so think twice before
exposing it; the token travels in clear over plain HTTP.`,
		setup: setupServe,
	})
}

type serveFlags struct {
	engine    engineFlags
	http      string
	cacheDir  string
	cacheSize sizeFlag
	watch     string
	token     tokenFlags
}

func setupServe(fset *flag.FlagSet) func([]string) error {
	var sf serveFlags
	sf.engine.register(fset)
	fset.StringVar(&sf.http, "http", "127.0.0.1:8080", "`ADDR` to serve HTTP on")
	fset.StringVar(&sf.cacheDir, "cache-dir", "", "where pieces are kept, in a directory per info-hash (default $XDG_CACHE_HOME/torrentfs, else ~/.cache/torrentfs)")
	fset.Var(&sf.cacheSize, "cache-size", "bound on the cached bytes of all torrents together (e.g. 2G; least recently read pieces of any torrent go first); 0 = keep everything and download it all")
	fset.StringVar(&sf.watch, "watch", "", "serve the torrents of the .torrent and .magnet files in `DIR` too, dropping them when their files are deleted")
	sf.token.register(fset)
	return func(args []string) error {
		if len(args) == 0 && sf.watch == "" && !sf.token.set() {
			return usagef("want at least one .torrent file or magnet link, --watch or --http-token")
		}
		if sf.http == "" {
			return usagef("--http needs an address")
		}
		return runServe(args, &sf)
	}
}

func runServe(args []string, sf *serveFlags) error {
	log := logrus.WithField("cmd", "serve")
	specs, err := readSpecs(args, int64(sf.cacheSize))
	if err != nil {
		return err
	}
	token, err := sf.token.get()
	if err != nil {
		return err
	}
	var w *library.Watcher
	ctx, stop := signalContext()
	defer stop()
	c, err := sf.engine.newClient(log)
	if err != nil {
		return err
	}
	defer c.Close()
	maxWindow := int64(sf.cacheSize) / 4
	hopts := httpserve.Options{Reader: reader.Options{MaxWindow: maxWindow}, Log: log}
	ctl := &httpControl{cacheSize: int64(sf.cacheSize)}
	if token != "" {
		hopts.Control, hopts.Token = ctl, token
	}
	hsrv := httpserve.New(hopts)
	view := newLibView(nil, hsrv, log)
	le := newLibEngine(c, &sf.engine, sf.cacheDir, int64(sf.cacheSize), log)
	defer le.Close()
	lib := library.New(le, view, log)
	defer lib.Close()
	ctl.lib = lib
	if sf.watch != "" {
		if w, err = library.NewWatcher(sf.watch, lib, 0, log); err != nil {
			return err
		}
	}
	for _, spec := range specs {
		if _, err := lib.Add(spec); err != nil {
			return fmt.Errorf("%s: %w", spec.Origin, err)
		}
	}
	hs, err := startHTTP(sf.http, hsrv, log)
	if err != nil {
		return err
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if w != nil {
			w.Run(ctx)
		}
	}()
	writes := ""
	if token != "" {
		writes = "; adding and removing with the token"
	}
	fmt.Fprintf(cmdStdout, "serving %d torrent(s) at %s (port %d%s)\n", len(specs), hs.url(), c.Port(), writes)
	<-ctx.Done()
	log.Info("stopping")
	<-watchDone // no add from the watched directory races the shutdown
	hs.close()
	lib.Close()
	view.logSessions(log)
	return nil
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

// Peers lists the torrent's peers for the status page.
func (t httpTorrent) Peers(ctx context.Context) []httpserve.Peer {
	ps := t.Torrent.Peers(ctx)
	if ps == nil {
		return nil
	}
	out := make([]httpserve.Peer, len(ps))
	for i, p := range ps {
		out[i] = httpserve.Peer{
			Addr: p.Addr, Client: p.Client, Transport: p.Transport, Encrypted: p.Encrypted,
			Outgoing: p.Outgoing, Seed: p.Seed, Progress: p.Progress, DownRate: p.DownRate,
			UpRate: p.UpRate, RTTms: float64(p.RTT) / float64(time.Millisecond), Flags: p.Flags,
		}
	}
	return out
}

var (
	_ httpserve.Torrent    = httpTorrent{}
	_ httpserve.PeerLister = httpTorrent{}
)

// httpListener is a running HTTP server.
type httpListener struct {
	srv    *http.Server
	addr   net.Addr
	cancel context.CancelFunc // ends every request's context
	done   chan struct{}
	h      *httpserve.Server
}

// startHTTP serves h on addr in a goroutine.
func startHTTP(addr string, h *httpserve.Server, log *logrus.Entry) (*httpListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	hl := &httpListener{addr: ln.Addr(), cancel: cancel, done: make(chan struct{}), h: h}
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
	hl.h.Close() // the heads parked for viewers' next requests
}
