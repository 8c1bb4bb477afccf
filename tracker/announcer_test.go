package tracker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// announceFakeClock is driven by the test: timers fire only when Advance passes them.
type announceFakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*announceFakeWaiter]bool
}

type announceFakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newAnnounceFakeClock() *announceFakeClock {
	return &announceFakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), waiters: make(map[*announceFakeWaiter]bool)}
}

func (c *announceFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *announceFakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &announceFakeWaiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.waiters[w] = true
	return w.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.waiters, w)
	}
}

func (c *announceFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			delete(c.waiters, w)
		}
	}
}

// waitTimer waits until the announcer is waiting for a timer due at want.
func (c *announceFakeClock) waitTimer(t *testing.T, want time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		var got []time.Time
		for w := range c.waiters {
			got = append(got, w.at)
		}
		c.mu.Unlock()
		if len(got) == 1 && got[0].Equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("announcer timers %v, want one at %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitAnyTimer waits until the announcer is waiting for one timer and returns when it is due.
func (c *announceFakeClock) waitAnyTimer(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		var got []time.Time
		for w := range c.waiters {
			got = append(got, w.at)
		}
		c.mu.Unlock()
		if len(got) == 1 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("announcer timers %v, want one", got)
		}
		time.Sleep(time.Millisecond)
	}
}

// announceServer is an HTTP tracker that records each announce's event.
type announceServer struct {
	*httptest.Server
	events chan string
	hits   atomic.Int32
	fail   atomic.Bool // answer 500
	hang   atomic.Bool // never answer (until the request is cancelled)
}

func newAnnounceServer(t *testing.T, reply map[string]any) *announceServer {
	t.Helper()
	s := &announceServer{events: make(chan string, 100)}
	body := clientBencode(t, reply)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.hang.Load() {
			<-r.Context().Done()
			return
		}
		if s.fail.Load() {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		s.events <- r.URL.Query().Get("event")
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *announceServer) url() string { return s.URL + "/announce" }

func (s *announceServer) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.events:
		if got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no announce, want event %q", want)
	}
}

// startAnnouncer runs a with a fake clock and returns a cancel that waits for Run to return.
func startAnnouncer(t *testing.T, a *Announcer) (*announceFakeClock, func()) {
	t.Helper()
	clock := newAnnounceFakeClock()
	a.clock = clock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return clock, stop
}

func announceTestLog() (*logrus.Entry, *logtest.Hook) {
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l), hook
}

func announceWarnings(hook *logtest.Hook, tracker string) int {
	n := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && e.Data["tracker"] == tracker {
			n++
		}
	}
	return n
}

func TestAnnouncerEvents(t *testing.T) {
	peer := netip.MustParseAddrPort("10.0.0.1:6881")
	srv := newAnnounceServer(t, map[string]any{
		"interval": 600, "min interval": 120, "complete": 4, "incomplete": 5,
		"peers": string(append(peer.Addr().AsSlice(), 0x1a, 0xe1)),
	})
	peers := make(chan []Peer, 10)
	var left atomic.Int64
	left.Store(100)
	log, _ := announceTestLog()
	a := NewAnnouncer(AnnouncerConfig{
		Tiers:   [][]string{{srv.url()}},
		Stats:   func() (int64, int64, int64) { return 0, 0, left.Load() },
		OnPeers: func(p []Peer) { peers <- p },
		Log:     log,
	})
	clock, stop := startAnnouncer(t, a)
	t0 := clock.Now()

	srv.expect(t, "started")
	if p := <-peers; len(p) != 1 || p[0].Addr != peer {
		t.Errorf("OnPeers got %v", p)
	}
	clock.waitTimer(t, t0.Add(600*time.Second))
	st := a.Status()
	if len(st) != 1 || st[0].Seeders != 4 || st[0].Leechers != 5 || st[0].LastError != "" ||
		!st[0].LastAnnounce.Equal(t0) || !st[0].NextAnnounce.Equal(t0.Add(600*time.Second)) {
		t.Errorf("status %+v", st)
	}

	// The interval passes: a regular announce.
	clock.Advance(600 * time.Second)
	srv.expect(t, "")
	t1 := t0.Add(600 * time.Second)
	clock.waitTimer(t, t1.Add(600*time.Second))

	// Wake brings the next announce forward to the min interval, not sooner.
	a.Wake()
	clock.waitTimer(t, t1.Add(120*time.Second))
	clock.Advance(119 * time.Second)
	clock.waitTimer(t, t1.Add(120*time.Second))
	clock.Advance(time.Second)
	srv.expect(t, "")
	t2 := t1.Add(120 * time.Second)
	clock.waitTimer(t, t2.Add(600*time.Second))

	// Completed goes out at once, and once.
	left.Store(0)
	a.Completed()
	srv.expect(t, "completed")
	clock.waitTimer(t, t2.Add(600*time.Second))
	a.Completed()
	clock.Advance(600 * time.Second)
	srv.expect(t, "")

	stop()
	srv.expect(t, "stopped")
	select {
	case ev := <-srv.events:
		t.Errorf("announce %q after stopped", ev)
	default:
	}
}

func TestAnnouncerSeederSendsNoCompleted(t *testing.T) {
	srv := newAnnounceServer(t, map[string]any{"interval": 600})
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{srv.url()}}})
	clock, stop := startAnnouncer(t, a)
	srv.expect(t, "started") // Stats defaults to left=0: a seeder
	a.Completed()
	clock.waitTimer(t, clock.Now().Add(600*time.Second))
	clock.Advance(600 * time.Second)
	srv.expect(t, "")
	stop()
	srv.expect(t, "stopped")
}

func TestAnnouncerTierFallback(t *testing.T) {
	// Tier 1: a UDP tracker whose port is closed. Tier 2: a tracker answering 500 and a good
	// one, in random order.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadUDP := "udp://" + pc.LocalAddr().String()
	pc.Close()
	bad := newAnnounceServer(t, nil)
	bad.fail.Store(true)
	good := newAnnounceServer(t, map[string]any{"interval": 600})
	log, hook := announceTestLog()
	a := NewAnnouncer(AnnouncerConfig{
		Tiers: [][]string{{deadUDP}, {bad.url(), good.url()}},
		Stats: func() (int64, int64, int64) { return 0, 0, 1 },
		Log:   log,
	})
	badFirst := a.tiers[1][0] == bad.url()
	clock, stop := startAnnouncer(t, a)

	good.expect(t, "started")
	clock.waitTimer(t, clock.Now().Add(600*time.Second))
	wantBad := int32(0)
	if badFirst {
		wantBad = 1
	}
	if got := bad.hits.Load(); got != wantBad {
		t.Errorf("bad tracker hit %d times, want %d (first in tier: %v)", got, wantBad, badFirst)
	}
	st := a.Status()
	if len(st) != 3 || st[0].URL != deadUDP || st[1].URL != good.url() || st[2].URL != bad.url() {
		t.Fatalf("status order %+v: want the dead tier, then good moved to the front of its tier", st)
	}
	if st[0].LastError == "" || st[1].LastError != "" || !st[1].NextAnnounce.Equal(clock.Now().Add(600*time.Second)) {
		t.Errorf("status %+v", st)
	}

	// Next round: tier 1 is tried again, then the good tracker directly.
	clock.Advance(600 * time.Second)
	good.expect(t, "")
	clock.waitTimer(t, clock.Now().Add(600*time.Second))
	if got := bad.hits.Load(); got != wantBad {
		t.Errorf("bad tracker hit again (%d) though good is at the front", got)
	}
	if n := announceWarnings(hook, deadUDP); n != 1 {
		t.Errorf("%d warnings for the dead tracker over two rounds, want 1", n)
	}
	stop()
	good.expect(t, "stopped")
}

func TestAnnouncerBackoffAndRecovery(t *testing.T) {
	srv := newAnnounceServer(t, map[string]any{"interval": 3600})
	srv.fail.Store(true)
	log, hook := announceTestLog()
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{srv.url()}}, Log: log})
	clock, stop := startAnnouncer(t, a)

	// Failures back off 15 s, 30 s, 60 s; started is retried each time.
	for i, wait := range []time.Duration{15 * time.Second, 30 * time.Second, 60 * time.Second} {
		clock.waitTimer(t, clock.Now().Add(wait))
		if got := srv.hits.Load(); got != int32(i+1) {
			t.Fatalf("%d attempts before backoff %v, want %d", got, wait, i+1)
		}
		if i == 2 {
			srv.fail.Store(false)
		}
		a.Wake() // does not cut a backoff short
		clock.waitTimer(t, clock.Now().Add(wait))
		clock.Advance(wait)
	}
	srv.expect(t, "started")
	clock.waitTimer(t, clock.Now().Add(3600*time.Second))
	if st := a.Status(); st[0].LastError != "" {
		t.Errorf("error kept after recovery: %+v", st)
	}
	if n := announceWarnings(hook, srv.url()); n != 1 {
		t.Errorf("%d warnings over three failures, want 1", n)
	}
	stop()
	srv.expect(t, "stopped")
}

func TestAnnouncerIntervalClamped(t *testing.T) {
	tests := []struct {
		interval int
		want     time.Duration
	}{
		{1, announceMinInterval},
		{0, announceDefaultInterval},
		{-5, announceDefaultInterval},
		{1 << 30, announceMaxInterval},
		{900, 900 * time.Second},
	}
	for _, tt := range tests {
		srv := newAnnounceServer(t, map[string]any{"interval": tt.interval})
		a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{srv.url()}}})
		clock, stop := startAnnouncer(t, a)
		srv.expect(t, "started")
		clock.waitTimer(t, clock.Now().Add(tt.want))
		stop()
		srv.expect(t, "stopped")
	}
}

func TestAnnouncerStoppedDoesNotHoldUpExit(t *testing.T) {
	srv := newAnnounceServer(t, map[string]any{"interval": 600})
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{srv.url()}}})
	a.stopTimeout = 100 * time.Millisecond
	clock, stop := startAnnouncer(t, a)
	srv.expect(t, "started")
	clock.waitTimer(t, clock.Now().Add(600*time.Second))
	srv.hang.Store(true)
	stop() // fails the test if Run does not return
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("%d requests, want started and a stopped attempt", got)
	}
}

func TestAnnouncerNoTrackers(t *testing.T) {
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{}, {""}}})
	_, stop := startAnnouncer(t, a)
	if st := a.Status(); len(st) != 0 {
		t.Errorf("status %+v", st)
	}
	stop()
}
