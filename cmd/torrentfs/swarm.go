package main

// What `seed` and `get` share: flags for the engine, loading the torrent, checking the data
// with a progress bar, and the status line.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"torrentfs/bitfield"
	"torrentfs/cache"
	"torrentfs/internal/udpmux"
	"torrentfs/library"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/utp"
)

// engineFlags are the flags of every command that joins a swarm.
type engineFlags struct {
	listen        string
	uploadLimit   sizeFlag
	downloadLimit sizeFlag
	peers         stringsFlag
	trackers      stringsFlag
	noTrackers    bool
	noWebSeeds    bool
	maxPeers      int
	maxConns      int
	encryption    encryptionFlag
	noUTP         bool
	noTCP         bool
	discoveryFlags
	portMapFlags
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", ":6881", "TCP address to accept peers on, both IPv4 and IPv6 by default (a busy port falls back to a free one)")
	fs.Var(&f.uploadLimit, "upload-limit", "upload rate limit in bytes per second (e.g. 2M); 0 = none")
	fs.Var(&f.downloadLimit, "download-limit", "download rate limit in bytes per second; 0 = none")
	fs.Var(&f.peers, "peer", "`HOST:PORT` of a peer to connect to (repeatable)")
	fs.Var(&f.trackers, "tracker", "announce `URL` to use instead of the torrent's (repeatable; each is a tier)")
	fs.BoolVar(&f.noTrackers, "no-trackers", false, "do not contact the torrent's trackers")
	fs.BoolVar(&f.noWebSeeds, "no-web-seeds", false, "do not fetch from the torrent's web seeds (BEP 19 url-list, a magnet's ws)")
	fs.IntVar(&f.maxPeers, "max-peers", 50, "maximum peer connections of each torrent")
	fs.IntVar(&f.maxConns, "max-conns", 200, "maximum peer connections of all torrents together")
	fs.Var(&f.encryption, "encryption", "peer connection encryption (MSE/PE), `MODE` prefer (encrypted handshake; RC4 if the peer wants it, else plaintext), require (RC4 only) or off (plaintext only) (default prefer)")
	fs.BoolVar(&f.noUTP, "no-utp", false, "do not connect to peers over uTP (BEP 29): TCP only")
	fs.BoolVar(&f.noTCP, "no-tcp", false, "do not connect to peers over TCP: uTP only")
	f.discoveryFlags.register(fs)
	f.portMapFlags.register(fs)
}

func (f *engineFlags) torrentConfig(store *cache.Storage) (swarm.TorrentConfig, error) {
	cfg := swarm.TorrentConfig{Storage: store, MaxPeers: f.maxPeers, NoPEX: f.noPEX}
	for _, p := range f.peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return cfg, usagef("--peer %q: want IP:PORT", p)
		}
		cfg.Peers = append(cfg.Peers, ap)
	}
	if f.noWebSeeds {
		cfg.WebSeeds = []string{}
	}
	switch {
	case f.noTrackers:
		cfg.Trackers = [][]string{}
	case len(f.trackers) > 0:
		for _, u := range f.trackers {
			cfg.Trackers = append(cfg.Trackers, []string{u})
		}
	}
	return cfg, nil
}

// newClient starts the engine, falling back to a free port when the asked one is taken,
// with port mapping, the DHT node and LSD unless they are turned off.
func (f *engineFlags) newClient(log *logrus.Entry) (*engine, error) {
	c, mux, err := f.newSwarmClient(log)
	if err != nil {
		return nil, err
	}
	e := &engine{Client: c, mux: mux}
	f.startPortMap(e, f.noDHT, log) // first: its external address is the DHT node's
	if ip := e.mappedExternalIP(); ip.IsValid() {
		c.SetExternalIP(ip) // told to peers in the extension handshake
	}
	if err := f.startDiscovery(e, log); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (f *engineFlags) newSwarmClient(log *logrus.Entry) (*swarm.Client, *udpmux.Mux, error) {
	cfg := swarm.ClientConfig{
		ListenAddr:    f.listen,
		UploadLimit:   int64(f.uploadLimit),
		DownloadLimit: int64(f.downloadLimit),
		Encryption:    swarm.Encryption(f.encryption),
		MaxConns:      f.maxConns,
		Log:           log,
	}
	switch {
	case f.noUTP && f.noTCP:
		return nil, nil, usagef("--no-utp and --no-tcp leave no way to reach peers")
	case f.noUTP:
		return f.newTCPClient(cfg, log)
	}
	return f.newUTPClient(cfg, log)
}

// newTCPClient starts the engine with TCP alone.
func (f *engineFlags) newTCPClient(cfg swarm.ClientConfig, log *logrus.Entry) (*swarm.Client, *udpmux.Mux, error) {
	c, err := swarm.NewClient(cfg)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		if host, port, perr := net.SplitHostPort(f.listen); perr == nil {
			cfg.ListenAddr = net.JoinHostPort(host, "0")
			log.Warnf("port %s is busy; listening on a free port instead", port)
			c, err = swarm.NewClient(cfg)
		}
	}
	return c, nil, err
}

// newUTPClient starts the engine with uTP: a UDP socket shared with the DHT (udpmux) and a
// TCP listener on the same port number unless --no-tcp. A busy TCP port falls back to a
// free one, the same for both; a busy UDP port turns uTP off (TCP keeps its port).
func (f *engineFlags) newUTPClient(cfg swarm.ClientConfig, log *logrus.Entry) (*swarm.Client, *udpmux.Mux, error) {
	host, port, err := net.SplitHostPort(f.listen)
	if err != nil {
		return nil, nil, usagef("--listen %q: want HOST:PORT", f.listen)
	}
	cfg.NoTCP = f.noTCP
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) && port != "0" && !f.noTCP {
				// The TCP port asked for may well be free: keep it, without uTP.
				log.Warnf("UDP port %s is busy; uTP is off", port)
				return f.newTCPClient(cfg, log)
			}
			if errors.Is(err, syscall.EADDRINUSE) && port != "0" {
				log.Warnf("port %s is busy; listening on a free port instead", port)
				port = "0"
				continue
			}
			return nil, nil, fmt.Errorf("listen for uTP peers on %s: %w", net.JoinHostPort(host, port), err)
		}
		m := udpmux.New(pc)
		cfg.UTP = utp.NewSocket(m.UTP(), log.WithField("part", "utp"))
		cfg.ListenAddr = net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		c, err := swarm.NewClient(cfg)
		if err == nil {
			return c, m, nil
		}
		cfg.UTP.Close()
		m.Close()
		if !errors.Is(err, syscall.EADDRINUSE) || try >= 5 {
			return nil, nil, err
		}
		if port != "0" {
			log.Warnf("port %s is busy; listening on a free port instead", port)
			port = "0"
		}
	}
}

// encryptionFlag is --encryption: checked as it is parsed, so every command refuses a bad
// value with its usage before doing anything.
type encryptionFlag swarm.Encryption

func (e *encryptionFlag) String() string { return swarm.Encryption(*e).String() }

func (e *encryptionFlag) Set(s string) error {
	v, err := swarm.ParseEncryption(s)
	if err != nil {
		return errors.New("want prefer, require or off")
	}
	*e = encryptionFlag(v)
	return nil
}

// loadTorrent reads a .torrent file, or fetches a magnet link's info dictionary from peers
// (BEP 9) through c until ctx ends; --peer, --tracker and --no-trackers apply to that fetch
// as to the download. With a nil c, magnet links are refused.
func loadTorrent(ctx context.Context, arg string, c *swarm.Client, ef *engineFlags) (*metainfo.MetaInfo, error) {
	if !metainfo.IsMagnet(arg) {
		mi, err := metainfo.Load(arg)
		if err != nil {
			return nil, err
		}
		return mi, library.Transferable(mi)
	}
	if c == nil {
		return nil, errors.New("this command needs the .torrent file, not a magnet link")
	}
	m, err := metainfo.ParseMagnet(arg)
	if err != nil {
		return nil, err
	}
	cfg, err := ef.torrentConfig(nil)
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
	// The download dials the magnet's peers too, not only the fetch: they are often the
	// only ones known (no trackers).
	for _, pe := range m.Peers {
		if _, err := netip.ParseAddrPort(pe); err == nil {
			ef.peers = append(ef.peers, pe)
		}
	}
	fmt.Fprintln(os.Stderr, "fetching metadata...")
	mi, err := c.FetchMetadata(ctx, m, cfg.Peers, trackers)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, errors.New("interrupted while fetching the metadata")
		}
		return nil, err
	}
	return mi, library.Transferable(mi)
}

// hashText is the info-hash a user knows a torrent by: its v1 one, or a v2-only torrent's v2
// one (v1 is the zero hash when absent).
func hashText(v1 metainfo.Hash, v2 metainfo.Hash256) string {
	if v1 == (metainfo.Hash{}) {
		return v2.HexString()
	}
	return v1.HexString()
}

// openStorage opens a torrent's storage under dir and verifies what is already there, with
// a progress bar on a terminal. An interrupt during the check returns context.Canceled,
// which run turns into a quiet exit.
func openStorage(ctx context.Context, dir string, mi *metainfo.MetaInfo, opts cache.Options) (*cache.Storage, bitfield.Bitfield, error) {
	bar := newProgress(os.Stderr, "verifying", mi.Info.TotalLength)
	defer bar.Done()
	return openChecked(ctx, dir, mi, opts, func(done, total int) {
		bar.Set(int64(done) * mi.Info.PieceLength)
	})
}

// openChecked opens a torrent's storage under dir and verifies what is already there,
// reporting the pieces checked to progress.
func openChecked(ctx context.Context, dir string, mi *metainfo.MetaInfo, opts cache.Options, progress func(done, total int)) (*cache.Storage, bitfield.Bitfield, error) {
	store, err := cache.Open(dir, mi, opts)
	if err != nil {
		return nil, bitfield.Bitfield{}, err
	}
	have, err := store.Check(ctx, progress)
	if err != nil {
		store.Close()
		if errors.Is(err, context.Canceled) {
			return nil, bitfield.Bitfield{}, err
		}
		return nil, bitfield.Bitfield{}, fmt.Errorf("verify the data in %s: %w", dir, err)
	}
	return store, have, nil
}

// addTorrent starts mi on c over store (holding have), configured by the engine flags;
// adjust, if not nil, sets what differs per command.
func (f *engineFlags) addTorrent(c *engine, mi *metainfo.MetaInfo, store *cache.Storage, have bitfield.Bitfield, adjust func(*swarm.TorrentConfig)) (*swarm.Torrent, error) {
	cfg, err := f.torrentConfig(store)
	if err != nil {
		return nil, err
	}
	cfg.Have = have
	if adjust != nil {
		adjust(&cfg)
	}
	return c.AddTorrent(mi, cfg)
}

// signalContext is cancelled by Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// statusLine prints the torrent's state once a second on a terminal until ctx ends.
func statusLine(ctx context.Context, w io.Writer, t *swarm.Torrent) {
	statusLineOf(ctx, w, func() string { return formatStats(t.Stats()) })
}

// statusLineOf prints line() once a second on a terminal, in place, until ctx ends.
func statusLineOf(ctx context.Context, w io.Writer, line func() string) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || !isTerminal(f.Fd()) {
		return
	}
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(w, "\r\033[K")
			return
		case <-tk.C:
			fmt.Fprintf(w, "\r\033[K%s", line())
		}
	}
}

func formatStats(s swarm.Stats) string {
	pct := 100.0
	if s.Total > 0 {
		pct = float64(s.BytesDone) * 100 / float64(s.Total)
	}
	web := ""
	if s.WebSeeds > 0 {
		web = fmt.Sprintf(" + %d web", s.WebSeeds)
	}
	return fmt.Sprintf("%5.1f%% %s/%s  peers %d (%d seeds)%s  down %s/s  up %s/s  uploaded %s",
		pct, humanBytes(s.BytesDone), humanBytes(s.Total), s.Peers, s.Seeds, web,
		humanBytes(int64(s.DownRate)), humanBytes(int64(s.UpRate)), humanBytes(s.Uploaded))
}

func isTerminal(fd uintptr) bool { return term.IsTerminal(int(fd)) }
