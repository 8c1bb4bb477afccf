package swarm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/cache"
	"torrentfs/metainfo"
	"torrentfs/picker"
	"torrentfs/swarm/wire"
	"torrentfs/tracker"
)

// TorrentConfig configures one torrent of a Client.
type TorrentConfig struct {
	// Storage holds the torrent's pieces; the caller opens it, runs its Check, and closes it
	// after the torrent. Have is what the Check found.
	Storage *cache.Storage
	Have    bitfield.Bitfield
	// CacheBytes > 0 bounds the bytes of verified pieces kept on disk (the mount's cache):
	// least recently read pieces nobody reads now are evicted to stay under it. 0 keeps
	// everything, until the disk is full (see StopOnDiskFull).
	CacheBytes int64
	// Pool, when set, shares its bound with the other torrents of the pool (see
	// CachePool); CacheBytes is then taken from it.
	Pool *CachePool
	// StopOnDiskFull stops downloading when the disk is full, for a download that must keep
	// every piece (get). Otherwise the cache shrinks to what the disk holds and reads go on.
	StopOnDiskFull bool
	// Trackers overrides the metainfo's announce tiers when non-nil; an empty non-nil slice
	// disables trackers.
	Trackers [][]string
	// Peers are dialed at once, besides those the trackers give.
	Peers []netip.AddrPort
	// MaxPeers bounds connections (default 50); MaxHalfOpen bounds dials in flight (8).
	MaxPeers    int
	MaxHalfOpen int
	// UploadSlots is the number of regular unchoke slots (default 4).
	UploadSlots int
	// NoBackground stops the rarest-first fill of pieces nobody reads (bounded cache mode).
	NoBackground bool
	// ForReaders marks a torrent mounted or served for reading: a peer is kept reserved
	// for due blocks from the start (reserve.go), not only once a reader shows up, so its
	// quota is refilled by the first seek.
	ForReaders bool
	// Spread makes a seed send each piece about once before any twice, rejecting requests
	// for pieces it gave a peer that is still downloading (spread.go): for the origin of a
	// fleet.
	Spread bool
	// NoPEX turns off peer exchange (BEP 11); a private torrent never has it.
	NoPEX bool
	// WebSeeds overrides the metainfo's url-list (BEP 19 web seeds) when non-nil; an empty
	// non-nil slice uses none.
	WebSeeds []string
	// webRetry shortens a web seed's first rest after a failure, for tests (webseed_run.go).
	webRetry time.Duration
	// pexInterval shortens the minute between ut_pex messages, for tests (pex.go).
	pexInterval   time.Duration
	duplicateRace time.Duration // tests: a longer window for two dials to count as a race (acceptConn)
	tickEvery     time.Duration // tests: the loop's tick interval instead of tickEvery
}

// Torrent is one torrent being downloaded and served. Its loop owns the fields grouped
// under "loop-owned"; the rest is immutable or atomic.
type Torrent struct {
	c     *Client
	mi    *metainfo.MetaInfo
	info  *metainfo.Info
	store *cache.Storage
	cfg   TorrentConfig
	log   *logrus.Entry
	// What the cache pool sees of this torrent (cachepool.go); written by the loop.
	poolUsed, poolOldest atomic.Int64
	poolOldestAt         time.Time    // when the loop last published poolOldest
	connsHeld            atomic.Int32 // room taken under the client's MaxConns and not yet given back

	events         chan any        // from peer, dial and API goroutines to the loop
	diskJobs       chan diskJob    // loop -> disk workers
	diskResults    chan diskResult // disk workers -> loop
	closing        chan struct{}   // closed by Close
	done           chan struct{}   // closed when the loop has stopped
	complete       chan struct{}   // closed when every piece is verified
	closeOnce      sync.Once
	wg             sync.WaitGroup // dials, disk workers, announcer
	blockPool      sync.Pool      // *[]byte block buffers from readers to disk
	stats          atomic.Pointer[Stats]
	uploaded       atomic.Int64
	downloaded     atomic.Int64 // verified piece bytes fetched from peers
	webUseful      atomic.Int64 // block bytes taken from web seeds
	announcer      *tracker.Announcer
	cancelAnnounce context.CancelFunc // stops the announcer and the peer sources
	fromSources    []atomic.Int64     // peers each of disc.sources reported
	disc           discovery          // the client's peer sources and DHT port, when added
	ih             metainfo.Hash      // the swarm's name: the v1 info-hash, or a v2-only torrent's truncated v2 one (metainfo.SwarmHash)
	v2ih           metainfo.Hash      // the truncated v2 info-hash of a v2 or hybrid torrent (a hybrid's peers may name either); zero for v1

	// loop-owned
	pk            *picker.Picker
	peers         peerSet
	webSeeds      []*webSeed // BEP 19 origins, pseudo-peers of the picker (webseed_run.go)
	cands         map[netip.AddrPort]*candidate
	banned        map[netip.Addr]bool
	halfOpen      int
	choker        *choker
	disk          diskState
	ledger        *cache.Ledger        // which pieces are on disk, pinned, in flight; evictions
	waiting       map[int][]*readReq   // reads of the mount waiting for each missing piece
	blk           map[int]*pieceBlocks // per-block state of pieces reads wait for (blockread.go)
	blockReleases int
	pins          map[int]pinRange // soft pins of each read head's wants
	deferred      []int            // evictions decided during a Pick, applied after it
	v2            v2State          // BEP 52 hash requests and verified block hashes (hashes.go)
	shrunk        bool             // the cache was shrunk to fit a full disk
	lastTick      time.Time
	startedAt     time.Time    // when the loop started
	unchokedOnce  bool         // some peer has unchoked us (the first is logged)
	reserved      *peerConn    // kept for due blocks while a reader is about (reserve.go)
	reserveBlind  bool         // reserved chosen before any rate was measured
	spread        *spreadState // with TorrentConfig.Spread, until every piece went out (spread.go)
	lastViewing   time.Time    // when a read head last had wants
	readBytes     int64        // bytes reads asked for since the last tick
	readRate      rateMeter    // of reads: with the download rate, tells a copy from a viewer
	downTotal     float64      // the peers' recent download rates summed, at the last tick
	waitFrom      time.Time    // since when reads have waited without a break seen by fill
	waitSeen      time.Time    // when fill last saw a read waiting
	pressed       bool         // what pressing last said, as told to the picker
	paceAt        time.Time    // when the pacing's refill is armed for (armPace), zero if not
	paceGen       int          // the armed refill's generation: an older one does nothing
	lastReadEnd   time.Time    // when a read last ended (trimReserved)
	trimPending   bool         // a trimReserved is posted
	ticks         int
	batchBoosts   int   // pipelines a batch deepened at once (noteBatch)
	err           error // a fatal storage error: downloading stopped

	// gen publishes presence to other goroutines (see torrent_cache.go); written by the
	// loop only.
	gen []atomic.Uint32
}

// Stats is a snapshot of a torrent for status lines and trackers.
type Stats struct {
	Pieces, PiecesDone int
	Total, BytesDone   int64
	Peers, Seeds       int
	WebSeeds           int   // web seeds in use (not resting after a failure)
	FromWebSeeds       int64 // block bytes taken from web seeds this session
	Encrypted          int   // peers whose connection is RC4-encrypted (MSE)
	Downloaded         int64 // piece bytes fetched from peers this session
	Uploaded           int64 // block bytes sent to peers this session
	DownRate, UpRate   float64
	Complete           bool
	Banned             int // addresses banned for bad data
	// BlockReleases counts pieces a read got before they were complete, its blocks
	// verified one by one against BEP 52 block hashes (blockread.go).
	BlockReleases int
	Err           error
}

// AddTorrent starts serving and downloading mi. Its storage must already be checked.
func (c *Client) AddTorrent(mi *metainfo.MetaInfo, cfg TorrentConfig) (*Torrent, error) {
	if cfg.Storage == nil {
		return nil, errors.New("add torrent: no storage")
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 50
	}
	if cfg.Pool != nil {
		cfg.CacheBytes = cfg.Pool.bound
	}
	if cfg.MaxHalfOpen <= 0 {
		cfg.MaxHalfOpen = 8
	}
	if cfg.UploadSlots <= 0 {
		cfg.UploadSlots = 4
	}
	var seed [8]byte
	rand.Read(seed[:])
	t := &Torrent{
		c:           c,
		mi:          mi,
		info:        &mi.Info,
		store:       cfg.Storage,
		cfg:         cfg,
		log:         c.log.WithField("torrent", mi.Info.Name),
		events:      make(chan any, 256),
		diskJobs:    make(chan diskJob),
		diskResults: make(chan diskResult, 64),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
		complete:    make(chan struct{}),
		pk:          picker.New(mi.Info.PieceLength, mi.Info.TotalLength, int64(binary.LittleEndian.Uint64(seed[:]))),
		peers:       newPeerSet(),
		cands:       make(map[netip.AddrPort]*candidate),
		banned:      make(map[netip.Addr]bool),
		choker:      newChoker(cfg.UploadSlots, binary.LittleEndian.Uint64(seed[:])),
		waiting:     make(map[int][]*readReq),
		blk:         make(map[int]*pieceBlocks),
		pins:        make(map[int]pinRange),
		ledger:      cache.NewLedger(&mi.Info, cfg.CacheBytes),
		gen:         make([]atomic.Uint32, mi.Info.NumPieces()),
		disc:        c.discovery(),
	}
	if mi.Info.Private {
		t.disc = discovery{externalIP: t.disc.externalIP} // BEP 27: a private torrent's peers come from its trackers only
	}
	t.blockPool.New = func() any { b := make([]byte, 0, metainfo.BlockSize); return &b }
	t.ih = mi.SwarmHash()
	if mi.Info.Version.HasV2() && !mi.InfoHashV2.IsZero() {
		t.v2ih = mi.InfoHashV2.Truncate() // for a v2-only torrent, t.ih too
	}
	t.v2.init(mi, t.v2ih != (metainfo.Hash{}))
	t.disk.init()
	if cfg.Have.Len() == t.info.NumPieces() {
		evicted := t.ledger.Load(cfg.Have)
		for i := range t.info.NumPieces() {
			if t.ledger.Present(i) {
				t.publish(i, true)
				t.pk.SetHave(i)
			}
		}
		for _, i := range evicted {
			t.queuePunch(i) // over the bound: never present to the picker
		}
	}
	if cfg.Pool != nil {
		t.ledger.SetClock(cfg.Pool.tick)
	}
	t.pk.SetGate(t.gate)
	t.pk.SetWaited(func(i int) bool { return len(t.waiting[i]) > 0 })
	if cfg.NoBackground {
		t.pk.SetBackground(false)
	}
	t.addWebSeeds()
	if cfg.Spread {
		t.spread = newSpread(t.ledger.Present, t.info.NumPieces())
	}
	if t.ledger.PresentCount() == t.info.NumPieces() {
		close(t.complete)
	}
	for _, a := range cfg.Peers {
		t.addCandidate(a)
	}
	t.publishStats(time.Now())

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("add torrent: client is closed")
	}
	if _, dup := c.torrents[t.ih]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("add torrent: %s is already added", t.ih)
	}
	if _, dup := c.torrents[t.v2ih]; dup && t.v2ih != (metainfo.Hash{}) {
		c.mu.Unlock()
		return nil, fmt.Errorf("add torrent: v2 info-hash %s is already added", mi.InfoHashV2)
	}
	c.torrents[t.ih] = t
	if t.v2ih != (metainfo.Hash{}) {
		// A hybrid answers on both info-hashes: v2 peers name the truncated SHA-256 one
		// (a v2-only torrent's only one).
		c.torrents[t.v2ih] = t
	}
	c.mu.Unlock()
	if cfg.Pool != nil {
		t.publishPool()
		cfg.Pool.join(t)
	}

	for range diskWorkers {
		t.wg.Add(1)
		go t.diskWorker()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancelAnnounce = cancel
	t.startAnnouncer(ctx)
	t.startSources(ctx)
	go t.run()
	return t, nil
}

func (t *Torrent) startAnnouncer(ctx context.Context) {
	tiers := t.cfg.Trackers
	if tiers == nil {
		tiers = t.mi.Trackers()
	}
	if len(tiers) == 0 {
		return
	}
	var key [4]byte
	rand.Read(key[:])
	t.announcer = tracker.NewAnnouncer(tracker.AnnouncerConfig{
		Tiers:     tiers,
		InfoHash:  t.ih,
		PeerID:    t.c.peerID,
		Port:      t.c.Port(),
		IP:        t.c.cfg.AnnounceIP,
		LocalAddr: t.c.bound,
		Key:       binary.BigEndian.Uint32(key[:]),
		NumWant:   50,
		Stats: func() (up, down, left int64) {
			s := t.stats.Load()
			return t.uploaded.Load(), t.downloaded.Load(), s.Total - s.BytesDone
		},
		OnPeers: func(ps []tracker.Peer) {
			addrs := make([]netip.AddrPort, 0, len(ps))
			for _, p := range ps {
				addrs = append(addrs, p.Addr)
			}
			// Never block the announcer; a dropped batch comes again at the next announce.
			select {
			case t.events <- addPeers(addrs):
			default:
			}
		},
		Log: t.log,
	})
	if t.pk.Done() {
		t.announcer.Completed()
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.announcer.Run(ctx)
	}()
}

// startSources asks the client's peer sources (DHT, LSD) for peers, unless the torrent is
// private (BEP 27: its peers come from its trackers only).
func (t *Torrent) startSources(ctx context.Context) {
	t.fromSources = make([]atomic.Int64, len(t.disc.sources))
	for i, src := range t.disc.sources {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			log := t.log.WithField("source", src.Name)
			src.Find(ctx, t.ih, t.c.Port(), func(addrs []netip.AddrPort) {
				if len(addrs) == 0 {
					return
				}
				if t.fromSources[i].Add(int64(len(addrs))) == int64(len(addrs)) {
					log.Infof("first %d peers from %s", len(addrs), src.Name)
				} else {
					log.Debugf("%d peers from %s", len(addrs), src.Name)
				}
				select {
				case t.events <- addPeers(addrs):
				case <-ctx.Done():
				}
			})
		}()
	}
}

// Close stops the torrent: it disconnects peers, announces `stopped` and waits for every
// goroutine. The storage stays open for the caller to close.
func (t *Torrent) Close() error {
	t.closeOnce.Do(func() {
		close(t.closing)
		if t.cancelAnnounce != nil {
			t.cancelAnnounce()
		}
		t.c.mu.Lock()
		for _, ih := range []metainfo.Hash{t.ih, t.v2ih} {
			if t.c.torrents[ih] == t {
				delete(t.c.torrents, ih)
			}
		}
		t.c.mu.Unlock()
	})
	<-t.done
	t.wg.Wait()
	t.c.conns.Add(-t.connsHeld.Swap(0))
	if t.cfg.Pool != nil {
		t.cfg.Pool.leave(t)
	}
	return nil
}

// InfoHash is the 20 bytes that name the torrent's swarm: its v1 info-hash, or a v2-only
// torrent's v2 one truncated (metainfo.MetaInfo.SwarmHash).
func (t *Torrent) InfoHash() metainfo.Hash { return t.ih }

// Info is the torrent's info dictionary.
func (t *Torrent) Info() *metainfo.Info { return t.info }

// Stats returns the latest snapshot (refreshed every second and on each verified piece).
func (t *Torrent) Stats() Stats {
	s := *t.stats.Load()
	// The byte counters are live; the rest is as of the last refresh.
	s.Downloaded, s.Uploaded = t.downloaded.Load(), t.uploaded.Load()
	s.FromWebSeeds = t.webUseful.Load()
	select {
	case <-t.complete:
		s.Complete = true
		s.PiecesDone, s.BytesDone = s.Pieces, s.Total
	default:
	}
	return s
}

// Complete is closed once every piece is verified.
func (t *Torrent) Complete() <-chan struct{} { return t.complete }

// Done is closed when the torrent has stopped.
func (t *Torrent) Done() <-chan struct{} { return t.done }

// AddPeers gives the torrent addresses to dial.
func (t *Torrent) AddPeers(addrs ...netip.AddrPort) {
	select {
	case t.events <- addPeers(addrs):
	case <-t.closing:
	}
}

// do runs f on the loop and waits for it; false when the torrent is closed.
func (t *Torrent) do(ctx context.Context, f func()) bool {
	ran := make(chan struct{})
	select {
	case t.events <- loopFunc(func() { f(); close(ran) }):
	case <-t.closing:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-ran:
		return true
	case <-t.done:
		return false
	}
}

// ErrClosed is returned by waits on a torrent that has stopped.
var ErrClosed = errors.New("torrent is closed")

func (t *Torrent) ourHandshake() wire.Handshake {
	var r wire.Reserved
	r.SetFast(true)
	r.SetExtended(true)
	r.SetDHT(t.disc.dhtPort != 0)
	// BEP 52: a hybrid offers to switch to v2 (a peer that takes it answers with the v2
	// hash); a v2-only torrent, named by its v2 hash, sets the bit too.
	r.SetV2(t.v2ih != metainfo.Hash{})
	return wire.Handshake{Reserved: r, InfoHash: t.ih, PeerID: t.c.peerID}
}

// answerHandshake is our reply to a peer's handshake that named ih with reserved bits r:
// for a hybrid, the v2 info-hash when the peer named it or offered to switch to it
// (BEP 52's upgrade), else the v1 one.
func (t *Torrent) answerHandshake(ih [20]byte, r wire.Reserved) wire.Handshake {
	hs := t.ourHandshake()
	if t.v2ih != (metainfo.Hash{}) && (ih == t.v2ih || r.V2()) {
		hs.InfoHash = t.v2ih
		hs.Reserved.SetV2(false)
	}
	return hs
}

// Event types for the loop.
type (
	addPeers []netip.AddrPort
	loopFunc func()
	newConn  struct {
		conn     net.Conn
		hs       wire.Handshake
		outgoing bool
		dialed   netip.AddrPort // the candidate dialed, when outgoing
	}
	dialFailed struct {
		addr netip.AddrPort
		err  error
	}
)

// addConn hands an established connection to the loop (from the accept path).
func (t *Torrent) addConn(conn net.Conn, hs wire.Handshake, outgoing bool) {
	select {
	case t.events <- newConn{conn: conn, hs: hs, outgoing: outgoing}:
	case <-t.closing:
		conn.Close()
	}
}
