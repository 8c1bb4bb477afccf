package tracker

// Announcer: keeps one torrent announced to its trackers (BEP 12 tiers). Its goroutine (Run)
// owns the tiers, the clients and the event state; the status table read by Status is owned
// by statusMu.

import (
	"context"
	"io"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	// Bounds on what a tracker may ask for: a tracker saying "every second" or "once a
	// year" is misconfigured, and obeying it would hurt it or us.
	announceMinInterval     = 30 * time.Second
	announceMaxInterval     = 3 * time.Hour
	announceDefaultInterval = 30 * time.Minute
	// announceWakeFloor limits Wake when the tracker gave no min interval.
	announceWakeFloor = time.Minute
	// Backoff after every tracker failed: 15 s doubling up to 30 min.
	announceRetryFirst = 15 * time.Second
	announceRetryMax   = 30 * time.Minute
	// announceAttemptTimeout bounds one tracker's turn, so a silent UDP tracker (whose
	// retransmissions would go on for hours) does not hold up the next one.
	announceAttemptTimeout = 60 * time.Second
	// announceStopTimeout bounds the stopped announce on shutdown: a mount must exit within
	// 2 s of Ctrl-C, and a tracker that does not answer a loopback or LAN request in this
	// time will forget us after its interval anyway.
	announceStopTimeout = 1500 * time.Millisecond
)

// AnnouncerConfig is what an Announcer needs to know about its torrent.
type AnnouncerConfig struct {
	Tiers    [][]string // announce-list (BEP 12); a single announce URL is one tier of one
	InfoHash [20]byte
	PeerID   [20]byte
	Port     uint16
	// IP, when valid, is the address trackers are told to hand out (BEP 3's ip, BEP 15's
	// IP field); LocalAddr, when valid, is the address announces are sent from. A client
	// listening on one specific address sets both to it.
	IP        netip.Addr
	LocalAddr netip.Addr
	Key       uint32
	NumWant   int // peers wanted per announce; 0 or less for the tracker's default
	// Stats is called from the announcer goroutine; it must be cheap and concurrency-safe.
	Stats func() (uploaded, downloaded, left int64)
	// OnPeers is called from the announcer goroutine with each reply's peers; it must not
	// block.
	OnPeers func([]Peer)
	Log     *logrus.Entry
}

// TrackerStatus is one tracker's state, for status lines.
type TrackerStatus struct {
	URL          string
	Tier         int
	LastError    string    // "" once the tracker answered
	LastAnnounce time.Time // last successful announce
	Seeders      int
	Leechers     int
	NextAnnounce time.Time // zero unless this is the tracker in use
}

// announceClock is the announcer's time: real in production, driven in tests.
type announceClock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed and a func that stops it.
	After(d time.Duration) (<-chan time.Time, func())
}

type announceRealClock struct{}

func (announceRealClock) Now() time.Time { return time.Now() }
func (announceRealClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Announcer keeps one torrent announced. Create it with NewAnnouncer, then call Run once.
type Announcer struct {
	cfg   AnnouncerConfig
	tiers [][]string // shuffled once; a tracker that answers moves to the front of its tier
	clock announceClock
	// newClient and the timeouts are fields so tests can substitute them.
	newClient      func(url string) (Client, error)
	attemptTimeout time.Duration
	stopTimeout    time.Duration

	completed atomic.Bool
	wakeAsked atomic.Bool
	wake      chan struct{} // cap 1: Completed and Wake poke the loop without blocking

	statusMu sync.Mutex
	status   map[string]*TrackerStatus
}

// NewAnnouncer prepares an announcer; nothing is sent until Run.
func NewAnnouncer(cfg AnnouncerConfig) *Announcer {
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		cfg.Log = logrus.NewEntry(l)
	}
	if cfg.Stats == nil {
		cfg.Stats = func() (int64, int64, int64) { return 0, 0, 0 }
	}
	if cfg.OnPeers == nil {
		cfg.OnPeers = func([]Peer) {}
	}
	a := &Announcer{
		cfg:            cfg,
		clock:          announceRealClock{},
		newClient:      func(u string) (Client, error) { return NewClientFrom(u, cfg.LocalAddr) },
		attemptTimeout: announceAttemptTimeout,
		stopTimeout:    announceStopTimeout,
		wake:           make(chan struct{}, 1),
		status:         make(map[string]*TrackerStatus),
	}
	seen := make(map[string]bool)
	for ti, tier := range cfg.Tiers {
		var t []string
		for _, u := range tier {
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			t = append(t, u)
			a.status[u] = &TrackerStatus{URL: u, Tier: ti}
		}
		if len(t) == 0 {
			continue
		}
		// BEP 12: shuffle each tier once, when the torrent is loaded.
		rand.Shuffle(len(t), func(i, j int) { t[i], t[j] = t[j], t[i] })
		a.tiers = append(a.tiers, t)
	}
	return a
}

// Completed tells the announcer the download finished; it sends event=completed once.
// Safe from any goroutine.
func (a *Announcer) Completed() {
	a.completed.Store(true)
	a.poke()
}

// Wake asks for an early announce, e.g. because the swarm ran out of peers. It is held back
// until the tracker's min interval has passed since the last announce. Safe from any
// goroutine.
func (a *Announcer) Wake() {
	a.wakeAsked.Store(true)
	a.poke()
}

func (a *Announcer) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Status returns every tracker's state, in tier order. Safe from any goroutine.
func (a *Announcer) Status() []TrackerStatus {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	out := make([]TrackerStatus, 0, len(a.status))
	for _, u := range a.order() {
		out = append(out, *a.status[u])
	}
	return out
}

// order lists the URLs in tier order. The tiers slice is reordered only with statusMu held,
// so Status may read it.
func (a *Announcer) order() []string {
	var out []string
	for _, t := range a.tiers {
		out = append(out, t...)
	}
	return out
}

// announceState is what Run carries from one announce to the next.
type announceState struct {
	startedSent   bool
	completedSent bool
	last          time.Time     // last successful announce
	interval      time.Duration // from the last reply, clamped
	minInterval   time.Duration
	early         bool      // Wake asked for the next announce at the min interval
	failures      int       // consecutive rounds in which no tracker answered
	failedAt      time.Time // end of the last round in which no tracker answered
	lastURL       string    // the tracker that answered last: it gets the stopped event
	trackerID     map[string]string
	failing       map[string]bool // per tracker: logged as failing, so later failures stay quiet
	warning       map[string]string
}

// Run announces until ctx is done, then sends event=stopped (bounded by a short timeout) and
// returns. Call it once.
func (a *Announcer) Run(ctx context.Context) {
	clients := make(map[string]Client)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	st := &announceState{
		trackerID: make(map[string]string),
		failing:   make(map[string]bool),
		warning:   make(map[string]string),
	}
	if len(a.tiers) == 0 {
		<-ctx.Done()
		return
	}
	for {
		ev := EventNone
		switch {
		case !st.startedSent:
			ev = EventStarted
		case a.completed.Load() && !st.completedSent:
			ev = EventCompleted
		}
		a.announceRound(ctx, clients, st, ev)
		if ctx.Err() != nil {
			break
		}
		if !a.waitNext(ctx, st) {
			break
		}
	}
	if st.startedSent && st.lastURL != "" {
		// The run's context is done; stopped gets its own short one so shutdown is not held up.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.stopTimeout)
		defer cancel()
		a.announceOne(sctx, clients, st, st.lastURL, EventStopped)
	}
}

// waitNext waits until the next announce is due, returning false when ctx is done.
func (a *Announcer) waitNext(ctx context.Context, st *announceState) bool {
	for {
		// A pending completed event goes out at once once started has gone through.
		if a.completed.Load() && st.startedSent && !st.completedSent && st.failures == 0 {
			return true
		}
		var due time.Time
		switch {
		case st.failures > 0:
			backoff := announceRetryFirst << min(st.failures-1, 10)
			due = st.failedAt.Add(min(backoff, announceRetryMax))
		case st.early:
			due = st.last.Add(st.minInterval)
		default:
			due = st.last.Add(st.interval)
		}
		a.setNext(st.lastURL, due)
		now := a.clock.Now()
		if !due.After(now) {
			return true
		}
		ch, stop := a.clock.After(due.Sub(now))
		select {
		case <-ctx.Done():
			stop()
			return false
		case <-ch:
			return true
		case <-a.wake:
			stop()
			// A wake during backoff changes nothing: the trackers are down either way.
			if a.wakeAsked.Swap(false) && st.failures == 0 {
				st.early = true
			}
		}
	}
}

// announceRound tries the tiers in order and each tier's trackers in order, stopping at
// the first tracker that answers (BEP 12).
func (a *Announcer) announceRound(ctx context.Context, clients map[string]Client, st *announceState, ev Event) {
	for ti := range a.tiers {
		for i := 0; i < len(a.tiers[ti]); i++ {
			u := a.tiers[ti][i]
			if !a.announceOne(ctx, clients, st, u, ev) {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			if i > 0 {
				a.statusMu.Lock()
				t := a.tiers[ti]
				copy(t[1:i+1], t[:i])
				t[0] = u
				a.statusMu.Unlock()
			}
			st.failures = 0
			st.lastURL = u
			switch ev {
			case EventStarted:
				st.startedSent = true
			case EventCompleted:
				st.completedSent = true
			}
			return
		}
	}
	st.failures++
	st.failedAt = a.clock.Now()
}

// announceOne announces ev to one tracker, records the outcome and hands on the peers.
func (a *Announcer) announceOne(ctx context.Context, clients map[string]Client, st *announceState, u string, ev Event) bool {
	log := a.cfg.Log.WithField("tracker", announceLogURL(u))
	c, ok := clients[u]
	if !ok {
		var err error
		c, err = a.newClient(u)
		if err != nil {
			a.failed(log, st, u, err)
			return false
		}
		clients[u] = c
	}
	up, down, left := a.cfg.Stats()
	req := AnnounceRequest{
		IP:         a.cfg.IP,
		InfoHash:   a.cfg.InfoHash,
		PeerID:     a.cfg.PeerID,
		Port:       a.cfg.Port,
		Uploaded:   up,
		Downloaded: down,
		Left:       left,
		Event:      ev,
		NumWant:    max(a.cfg.NumWant, -1),
		Key:        a.cfg.Key,
		Compact:    true,
		TrackerID:  st.trackerID[u],
	}
	if ev == EventStopped {
		req.NumWant = 0
	} else if req.NumWant == 0 {
		req.NumWant = -1
	}
	actx, cancel := context.WithTimeout(ctx, a.attemptTimeout)
	resp, err := c.Announce(actx, req)
	cancel()
	if err != nil {
		if ctx.Err() != nil && ev != EventStopped {
			return false
		}
		a.failed(log, st, u, err)
		return false
	}
	now := a.clock.Now()
	if st.failing[u] {
		log.Info("tracker answers again")
		st.failing[u] = false
	}
	if resp.Warning != st.warning[u] {
		st.warning[u] = resp.Warning
		if resp.Warning != "" {
			log.WithField("warning", resp.Warning).Warn("tracker warning")
		}
	}
	if resp.TrackerID != "" {
		st.trackerID[u] = resp.TrackerID
	}
	st.last = now
	st.early = false
	st.interval = announceClampInterval(resp.Interval)
	st.minInterval = min(max(resp.MinInterval, announceMinInterval), st.interval)
	if resp.MinInterval == 0 {
		st.minInterval = min(announceWakeFloor, st.interval)
	}
	if ev == EventStarted && left == 0 {
		// Started as a seeder: there is no download to report as completed.
		st.completedSent = true
	}
	log.WithFields(logrus.Fields{
		"event": ev.String(), "peers": len(resp.Peers),
		"seeders": resp.Complete, "leechers": resp.Incomplete, "interval": st.interval,
	}).Debug("announced")

	a.statusMu.Lock()
	s := a.status[u]
	s.LastError = ""
	s.LastAnnounce = now
	s.Seeders, s.Leechers = resp.Complete, resp.Incomplete
	a.statusMu.Unlock()

	if len(resp.Peers) > 0 && ev != EventStopped {
		a.cfg.OnPeers(resp.Peers)
	}
	return true
}

// failed records a tracker's failure, logging at Warn only when it starts failing.
func (a *Announcer) failed(log *logrus.Entry, st *announceState, u string, err error) {
	if !st.failing[u] {
		st.failing[u] = true
		log.WithError(err).Warn("tracker not answering; will retry")
	} else {
		log.WithError(err).Debug("tracker still failing")
	}
	a.statusMu.Lock()
	a.status[u].LastError = err.Error()
	a.statusMu.Unlock()
}

// setNext records when the next announce is due, on the tracker in use.
func (a *Announcer) setNext(u string, due time.Time) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	for url, s := range a.status {
		if url == u {
			s.NextAnnounce = due
		} else {
			s.NextAnnounce = time.Time{}
		}
	}
}

func announceClampInterval(d time.Duration) time.Duration {
	if d == 0 {
		return announceDefaultInterval
	}
	return min(max(d, announceMinInterval), announceMaxInterval)
}

// announceLogURL is a tracker URL for logs: without the query, where private trackers put
// the passkey.
func announceLogURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable tracker URL)"
	}
	return httpDisplayURL(u)
}
