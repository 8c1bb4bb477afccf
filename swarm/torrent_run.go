package swarm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
	"torrentfs/picker"
	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

const (
	tickEvery = time.Second
	// quietTickEvery is the tick of a quiet torrent (see quiet): a library of a hundred
	// idle torrents must cost next to nothing. Anything that makes it busy brings the
	// regular tick back at once.
	quietTickEvery = 5 * time.Second
	chokeEvery     = 10 // ticks
	snubAfter      = 60 * time.Second
	redialAfter    = 30 * time.Second
	// duplicateGrace: a connection that replaced a duplicate and ends within this long
	// was hung up by a peer that kept the other one (acceptConn).
	duplicateGrace = 5 * time.Second
	// duplicateRace: two connections with one peer whose handshakes completed within
	// this long of each other were dialed at the same time, by both sides (acceptConn).
	duplicateRace = 250 * time.Millisecond
	// redialFailed is how long a peer whose dial or handshake failed waits for its first
	// retry; it doubles with every failure in a row (up to about 8 minutes). A client still
	// checking its data, or just done with it (qBittorrent resets handshakes for a second
	// or so after it reports seeding), is ready seconds later.
	redialFailed = 2 * time.Second
	// requestHorizon is how many seconds of a peer's measured rate we keep requested, so
	// its pipe never runs dry between our requests.
	requestHorizon = 0.5
	minPipeline    = 16
	maxPipeline    = 1000
)

// peerSet is the loop's set of connections, by key and by peer id.
type peerSet struct {
	byKey  map[picker.PeerID]*peerConn
	byID   map[[20]byte]*peerConn
	list   []*peerConn
	nextID picker.PeerID
}

func newPeerSet() peerSet {
	return peerSet{byKey: make(map[picker.PeerID]*peerConn), byID: make(map[[20]byte]*peerConn)}
}

func (s *peerSet) has(p *peerConn) bool { return s.byKey[p.key] == p }

func (s *peerSet) add(p *peerConn) {
	s.nextID++
	p.key = s.nextID
	s.byKey[p.key] = p
	s.byID[p.peerID] = p
	s.list = append(s.list, p)
}

// reserveKey takes a picker key for a source that is not a connection (a web seed), so
// that keys never clash.
func (s *peerSet) reserveKey() picker.PeerID {
	s.nextID++
	return s.nextID
}

func (s *peerSet) remove(p *peerConn) {
	delete(s.byKey, p.key)
	if s.byID[p.peerID] == p {
		delete(s.byID, p.peerID)
	}
	for i, q := range s.list {
		if q == p {
			s.list = append(s.list[:i], s.list[i+1:]...)
			break
		}
	}
}

// candidate is a peer address we may dial.
type candidate struct {
	connected bool
	dialing   bool
	fails     int
	nextTry   time.Time
}

func (t *Torrent) run() {
	defer close(t.done)
	normalTick := cmp.Or(t.cfg.tickEvery, tickEvery) // a test may change it
	tick := time.NewTicker(normalTick)
	defer tick.Stop()
	t.lastTick = time.Now()
	t.startedAt = t.lastTick
	if t.cfg.ForReaders {
		// A mount is read soon after it is made: its peers are paced from the start, as
		// for a reader that was about a moment ago (reserveLinger), so that the first
		// seek finds the seeders' quota banked (picker/pace.go). A mount nobody reads
		// within reserveLinger downloads at full rate from then on.
		t.lastViewing = t.lastTick
		t.updateReserve(t.lastTick)
	}
	t.dialMore(t.lastTick)
	t.fillAll() // web seeds need no connection to start
	quiet := false
	for {
		jobs, head := t.disk.next(t.diskJobs)
		ticked := false
		select {
		case ev := <-t.events:
			t.handleEvent(ev)
		case jobs <- head:
			t.disk.taken()
		case r := <-t.diskResults:
			t.handleDisk(r)
		case now := <-tick.C:
			t.tick(now)
			ticked = true
		case <-t.closing:
			t.shutdown()
			return
		}
		t.publishPool()
		// Quiet is decided at ticks; it ends with the first event that makes work.
		if ticked || quiet {
			if q := t.quiet(); q != quiet {
				quiet = q
				every := normalTick
				if q {
					every = quietTickEvery
				}
				tick.Reset(every)
			}
		}
	}
}

// quiet tells whether the torrent has nothing to do between ticks: nothing to download
// (complete, or a bounded cache nobody reads), no read waiting, no disk work, no dial in
// flight, and no peer moving data or waiting for our unchoke.
func (t *Torrent) quiet() bool {
	if !t.pk.Done() || len(t.waiting) > 0 || t.halfOpen > 0 || t.disk.busy() || t.shrunk {
		return false
	}
	for _, p := range t.peers.list {
		if p.downRate.rate > 0 || p.upRate.rate > 0 || p.peerInterested && p.amChoking {
			return false
		}
	}
	return true
}

func (t *Torrent) shutdown() {
	t.stopWeb()
	for _, p := range t.peers.list {
		p.close()
	}
	for _, p := range t.peers.list {
		p.done.Wait()
	}
	for _, blocks := range t.disk.writes {
		for _, b := range blocks {
			if b.buf != nil {
				t.blockPool.Put(b.buf)
			}
		}
	}
	t.failReads(ErrClosed)
	t.failHashFetches(ErrClosed)
	// The disk workers have stopped taking jobs (closing is closed): the last resume file
	// is written here, with the loop's final have set.
	if err := t.store.SaveState(t.ledger.Have(), t.store.StatFiles()); err != nil {
		t.log.WithError(err).Warn("cannot write the resume file")
	}
	t.publishStats(time.Now())
}

func (t *Torrent) handleEvent(ev any) {
	switch ev := ev.(type) {
	case peerMsg:
		if t.peers.has(ev.p) {
			t.handleMessage(ev.p, ev.msg, ev.buf)
		} else if ev.buf != nil {
			t.blockPool.Put(ev.buf)
		}
	case peerGone:
		t.dropPeer(ev.p, ev.err)
	case newConn:
		t.acceptConn(ev)
	case dialFailed:
		t.halfOpen--
		t.releaseConn()
		if c := t.cands[ev.addr]; c != nil {
			c.dialing = false
			c.fails++
			c.nextTry = time.Now().Add(redialFailed << min(c.fails-1, 8))
		}
		t.log.WithField("peer", ev.addr).WithError(ev.err).Debug("dial failed")
		t.dialMore(time.Now())
	case addPeers:
		for _, a := range ev {
			t.addCandidate(a)
		}
		t.dialMore(time.Now())
	case loopFunc:
		ev()
	case webBlock:
		t.onWebBlock(ev)
	case webDone:
		t.onWebDone(ev)
	}
}

func (t *Torrent) addCandidate(a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 || t.banned[a.Addr()] {
		return
	}
	if la := t.c.Addr(); la != nil && t.c.Port() == a.Port() && isLocalAddr(a.Addr(), la.String()) {
		return // ourselves, as the tracker sees us
	}
	if _, ok := t.cands[a]; !ok {
		t.cands[a] = &candidate{}
	}
}

// isLocalAddr tells whether a is the address the listener is bound to.
func isLocalAddr(a netip.Addr, listen string) bool {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap() == a || ap.Addr().IsUnspecified() && a.IsLoopback()
}

// dialMore starts dials while there is room for connections.
func (t *Torrent) dialMore(now time.Time) {
	// A complete torrent waits for leechers to come to it, and dials those the tracker
	// lists too: both are needed for seeding behind a tracker that sees only seeds dial out.
	for addr, c := range t.cands {
		if len(t.peers.list)+t.halfOpen >= t.cfg.MaxPeers || t.halfOpen >= t.cfg.MaxHalfOpen {
			return
		}
		if c.connected || c.dialing || now.Before(c.nextTry) || t.banned[addr.Addr()] {
			continue
		}
		if !t.takeConn() {
			return // the client's bound on connections of all torrents
		}
		c.dialing = true
		t.halfOpen++
		t.wg.Add(1)
		go t.dialPeer(addr)
	}
}

func (t *Torrent) dialPeer(addr netip.AddrPort) {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	var v2 [20]byte
	if t.v2ih != t.ih {
		v2 = t.v2ih // a hybrid (a v2-only torrent's t.ih is its v2 hash already)
	}
	conn, hs, err := t.c.dial(ctx, addr, t.ourHandshake(), v2)
	var ev any = newConn{conn: conn, hs: hs, outgoing: true, dialed: addr}
	if err != nil {
		ev = dialFailed{addr: addr, err: err}
	}
	select {
	case t.events <- ev:
	case <-t.closing:
		if conn != nil {
			conn.Close()
		}
	}
}

// takeConn reserves room for a connection under the client's bound; the torrent counts
// what it holds so that Close gives back whatever a connection lost on the way (a dial
// finishing as the torrent stops) did not.
func (t *Torrent) takeConn() bool {
	if !t.c.takeConn() {
		return false
	}
	t.connsHeld.Add(1)
	return true
}

func (t *Torrent) releaseConn() {
	t.connsHeld.Add(-1)
	t.c.releaseConn()
}

// keepDialedBy tells, of two connections with the peer `them` (one we dialed, one it
// dialed), whether to keep the one we dialed (outgoing) or the other: both sides keep the
// one dialed by the larger peer ID.
func (t *Torrent) keepDialedBy(outgoing bool, them [20]byte) bool {
	weDialWins := bytes.Compare(t.c.peerID[:], them[:]) > 0
	return outgoing == weDialWins
}

// acceptConn registers a connection that finished its handshake.
func (t *Torrent) acceptConn(ev newConn) {
	if ev.outgoing {
		t.halfOpen--
		if c := t.cands[ev.dialed]; c != nil {
			c.dialing = false
		}
	}
	addr := remoteAddrPort(ev.conn)
	reject := ""
	var replaced netip.AddrPort
	// An outgoing connection holds the room its dial took; an incoming one takes it now.
	slot := ev.outgoing || t.takeConn()
	switch {
	case !slot:
		reject = "too many connections in all"
	case ev.hs.PeerID == t.c.peerID:
		reject = "connected to ourselves"
		if c := t.cands[ev.dialed]; c != nil {
			c.nextTry = time.Now().Add(24 * time.Hour)
		}
	case t.banned[addr.Addr()]:
		reject = "banned"
	case t.peers.byID[ev.hs.PeerID] != nil:
		if old := t.peers.byID[ev.hs.PeerID]; old.pex.outgoing != ev.outgoing {
			// Both sides dialed. Within a moment of each other, both keep the same one of
			// the two connections, the one dialed by the larger peer ID, or each might
			// drop the one the other keeps. A connection that has been up for longer is
			// kept: the peer dialed without knowing it was us (aria2 does, on its own
			// timer, and then hangs up its new one whatever the peer IDs). Should the
			// peer keep the other one after all, both are gone: the survivor ending soon
			// redials the address we can dial at once (dropPeer) rather than after
			// redialAfter.
			dialable := ev.dialed
			if old.pex.outgoing {
				dialable = old.addr
			}
			race := duplicateRace
			if t.cfg.duplicateRace > 0 {
				race = t.cfg.duplicateRace
			}
			if time.Since(old.connectedAt) < race && t.keepDialedBy(ev.outgoing, ev.hs.PeerID) {
				replaced = dialable
				t.dropPeer(old, errors.New("a duplicate connection: keeping the other one"))
				break
			}
			old.replaced, old.replacedAt = dialable, time.Now()
		}
		reject = "duplicate connection"
	case len(t.peers.list) >= t.cfg.MaxPeers:
		reject = "too many peers"
	}
	if reject != "" {
		t.log.WithField("peer", addr).Debug("dropping connection: ", reject)
		ev.conn.Close()
		if slot {
			t.releaseConn()
		}
		if c := t.cands[ev.dialed]; ev.outgoing && c != nil && c.nextTry.Before(time.Now()) {
			// Not at once again: a peer we already have (it dialed us) would be dialed
			// and dropped in a loop, thousands of times a second.
			c.nextTry = time.Now().Add(redialAfter)
		}
		t.dialMore(time.Now())
		return
	}
	if ev.outgoing {
		if c := t.cands[ev.dialed]; c != nil {
			c.connected, c.fails = true, 0
		}
	}
	p := newPeerConn(ev.conn, addr, ev.hs, t.log)
	p.release = t.releaseConn
	if ev.outgoing {
		p.addr = ev.dialed
	}
	p.pex.outgoing = ev.outgoing
	p.replaced, p.replacedAt = replaced, time.Now()
	p.clientName = wire.ClientName(ev.hs.PeerID)
	p.connectedAt = time.Now()
	p.has = bitfield.New(t.info.NumPieces())
	p.fast = ev.hs.Reserved.Fast()
	p.extended = ev.hs.Reserved.Extended()
	p.v2 = t.v2ih != (metainfo.Hash{}) && ev.hs.InfoHash == t.v2ih
	t.peers.add(p)
	t.pk.PeerAdd(p.key)
	p.log = p.log.WithFields(logrus.Fields{"client": p.clientName, "encryption": connEncryption(ev.conn)})
	if t.v2ih != (metainfo.Hash{}) {
		// Whether a hybrid's connection took the v2 upgrade (BEP 52 hash messages).
		p.log = p.log.WithField("v2", p.v2)
	}
	p.log.Debug("peer connected")
	p.start(peerIO{
		events:    t.events,
		closed:    t.closing,
		readBlock: t.readBlock,
		pieceSize: t.info.PieceSize,
		maxMsgLen: wire.MaxLenFor(t.info.NumPieces()),
		upLimit:   t.c.upLimit,
		downLimit: t.c.downLimit,
		uploaded:  &t.uploaded,
		blockPool: &t.blockPool,

		serveRequest: t.serveRequest,
	})
	have := t.ledger.Have()
	switch {
	case p.fast && have.All():
		p.send(wire.Message{ID: wire.HaveAll})
	case p.fast && have.Count() == 0:
		p.send(wire.Message{ID: wire.HaveNone})
	case have.Count() > 0:
		p.send(wire.Message{ID: wire.Bitfield, Bitfield: have.Bytes()})
	}
	if ev.hs.Reserved.DHT() && t.disc.dhtPort != 0 {
		p.send(wire.Message{ID: wire.Port, Port: t.disc.dhtPort})
	}
	if p.extended {
		eh := wire.ExtHandshake{M: map[string]int{}, V: "torrentfs " + Version, Reqq: maxUploadQueue, P: int(t.c.Port()),
			YourIP: p.addr.Addr().Unmap().AsSlice()} // BEP 10: how we see it, so it can learn its address
		if ip := t.disc.externalIP; ip.Is4() {
			eh.IPv4 = ip.AsSlice()
		} else if ip.Is6() {
			eh.IPv6 = ip.AsSlice()
		}
		if len(t.mi.InfoBytes) > 0 {
			// BEP 9: peers that came with a magnet link fetch the info dictionary from us.
			eh.M[wire.ExtMetadata] = metadataExtID
			eh.MetadataSize = len(t.mi.InfoBytes)
		}
		if t.pexEnabled() {
			eh.M[wire.ExtPex] = pexExtID
		}
		if b, err := eh.Encode(); err == nil {
			p.send(wire.Message{ID: wire.Extended, ExtID: 0, Payload: b})
		}
	}
	// Start uploading at once when a slot is free rather than at the next choking round.
}

// Version is sent in the extension handshake.
var Version = "dev"

func (t *Torrent) dropPeer(p *peerConn, err error) {
	if !t.peers.has(p) {
		return
	}
	p.close()
	t.peers.remove(p)
	freed := t.pk.PeerRemove(p.key)
	if c := t.cands[p.addr]; c != nil {
		c.connected = false
		c.nextTry = time.Now().Add(redialAfter)
	}
	if c := t.cands[p.replaced]; c != nil && time.Since(p.replacedAt) < duplicateGrace {
		// This connection was kept over a duplicate and the peer hung it up soon after:
		// it kept the other one, which we dropped. Dial it again now: neither side holds
		// a connection any more.
		c.connected = false
		c.nextTry = time.Time{}
		p.log.Debug("the peer kept the duplicate we dropped: redialling")
	}
	t.hashPeerGone(p)
	p.log.WithError(err).Debug("peer disconnected")
	if len(freed) > 0 {
		t.fillAll()
	}
	t.dialMore(time.Now())
}

// ban disconnects a peer and refuses its address from now on.
func (t *Torrent) ban(p *peerConn, why string) {
	t.banned[p.addr.Addr()] = true
	p.log.Warn("banning peer: ", why)
	t.dropPeer(p, nil)
	t.publishStats(time.Now())
}

// disconnect drops a peer for a protocol violation.
func (t *Torrent) disconnect(p *peerConn, why string) {
	p.log.Info("disconnecting peer: ", why)
	t.dropPeer(p, nil)
}

func (t *Torrent) tick(now time.Time) {
	dt := now.Sub(t.lastTick)
	t.lastTick = now
	t.ticks++
	for _, p := range t.peers.list {
		p.floodWarnings = 0
		t.adaptPipeline(p, now)
		p.downRate.tick(p.downloaded.Swap(0), dt)
		p.upRate.tick(p.uploaded.Swap(0), dt)
		// The picker plans with the recent rate: a connection still ramping up (TCP's slow
		// start over a long round trip) is not held to the smoothed rate's first seconds.
		t.pk.PeerRate(p.key, p.downRate.recent())
		// Anti-snubbing: a peer that has our requests but sent nothing for a minute loses
		// its regular upload slot until it delivers again.
		p.snubbed = t.pk.Outstanding(p.key) > 0 && !p.peerChoking &&
			now.Sub(later(p.lastBlock, p.lastUnchoked)) > snubAfter
	}
	t.readRate.tick(t.readBytes, dt)
	t.readBytes = 0
	t.downTotal = 0
	for _, p := range t.peers.list {
		t.downTotal += p.downRate.recent()
	}
	t.updateReserve(now)
	t.webTick(now, dt)
	// Expired requests stay open at their peers (a late block is still accepted) but are
	// free for the peers that deliver.
	t.pk.Expired(now)
	t.preempt(now)
	if len(t.waiting) > 0 {
		t.checkReads()
	}
	if t.shrunk && t.ticks%regrowEvery == 0 && !t.disk.usagePending {
		t.disk.usagePending = true
		t.disk.queue = append(t.disk.queue, diskJob{kind: jobUsage, regrow: true})
	}
	if t.ticks%chokeEvery == 1 {
		t.chokeRound(now)
	}
	t.fillAll()
	t.pexTick(now)
	t.hashTick(now)
	t.dialMore(now)
	if len(t.peers.list) == 0 && t.halfOpen == 0 && t.announcer != nil {
		// Out of peers: ask the trackers again (they rate-limit this to their min interval)
		// rather than wait up to half an hour for the next regular announce.
		t.announcer.Wake()
	}
	t.publishStats(now)
}

// chokeRound applies the choker's decision.
func (t *Torrent) chokeRound(now time.Time) {
	seeding := t.pk.Done()
	cands := make([]chokeCandidate, 0, len(t.peers.list))
	for _, p := range t.peers.list {
		rate := p.downRate.rate
		if seeding {
			rate = p.upRate.rate
		}
		cands = append(cands, chokeCandidate{
			key:        int(p.key),
			interested: p.peerInterested,
			snubbed:    p.snubbed,
			rate:       rate,
			fresh:      now.Sub(p.connectedAt) < 3*chokeEvery*tickEvery,
		})
	}
	unchoke := t.choker.decide(cands)
	for _, p := range t.peers.list {
		t.setChoking(p, !unchoke[int(p.key)])
	}
}

func (t *Torrent) setChoking(p *peerConn, choke bool) {
	if p.amChoking == choke {
		return
	}
	p.amChoking = choke
	if !choke {
		p.unchoke()
		t.spreadSuggest(p, 2)
		return
	}
	p.send(wire.Message{ID: wire.Choke})
	// BEP 6: a choke cancels the peer's queued requests, and a fast peer is told each one.
	for _, m := range p.dropUploads() {
		if p.fast {
			p.send(wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
		}
	}
}

func (t *Torrent) setInterested(p *peerConn, on bool) {
	if p.amInterested == on {
		return
	}
	p.amInterested = on
	id := wire.NotInterested
	if on {
		id = wire.Interested
	}
	p.send(wire.Message{ID: id})
}

// updateInterest sends interested / not interested as the peer's pieces and ours change.
func (t *Torrent) updateInterest(p *peerConn) {
	t.setInterested(p, t.err == nil && t.pk.Interesting(p.key))
}

// fillAll tops up the request pipelines of every peer that unchoked us.
func (t *Torrent) fillAll() {
	for _, p := range t.peers.list {
		t.fill(p)
	}
	for _, ws := range t.webSeeds {
		t.fillWeb(ws)
	}
}

// topUpEvery: without a reader about, a pipeline is refilled once a 1/topUpEvery of it is
// free (see fill).
const topUpEvery = 4

// readerAbout tells whether reads are being served or may come soon: the torrent is
// mounted or served for reading, a read waits, a read head has wants now or had them
// within reserveLinger. Then every free slot of a pipeline is filled at once, so that a
// block a read waits for is asked for as soon as there is room.
func (t *Torrent) readerAbout(now time.Time) bool {
	return t.cfg.ForReaders || len(t.waiting) > 0 || len(t.pins) > 0 || t.readLately(now)
}

// readLately tells whether a read head had wants within reserveLinger.
func (t *Torrent) readLately(now time.Time) bool {
	return !t.lastViewing.IsZero() && now.Sub(t.lastViewing) < reserveLinger
}

// pick asks the picker for up to n blocks for a peer or web seed, and has the loop come
// back when the pacing held one back (armPace).
func (t *Torrent) pick(key picker.PeerID, n int, now time.Time) []picker.Block {
	bs := t.pk.Pick(key, n, now)
	if w := t.pk.PaceWake(); !w.IsZero() {
		t.armPace(w)
	}
	return bs
}

// armPace has the loop refill the pipelines at w, when a peer the pacing held back may be
// asked for more (picker/pace.go): its pipeline may be empty by then, and nothing else
// would come to refill it. One timer, for the earliest such time.
func (t *Torrent) armPace(w time.Time) {
	if !t.paceAt.IsZero() && !w.Before(t.paceAt) {
		return
	}
	t.paceAt = w
	t.paceGen++
	gen := t.paceGen
	time.AfterFunc(time.Until(w), func() {
		t.post(func() {
			if gen == t.paceGen {
				t.paceAt = time.Time{}
				t.fillAll()
			}
		})
	})
}

// pressFraction: reads that take at least this fraction of what we download press (a
// copy, a player catching up); slower ones (a player ahead of its position, a viewer who
// seeks) leave the peers paced (picker/pace.go).
const pressFraction = 0.5

// pressWait: reads that have waited this long without a break press too. A copy starting
// on a fresh mount reads no faster than the paced download lets it, and a capacity
// measured in TCP's slow start (seconds, over a long round trip) would pace the copy to
// that; a viewer's seek is over sooner.
const pressWait = time.Second

// pressLinger: reads that press go on pressing while one has waited within this long. A
// copy waits for nearly every read, with breaks between them; while the download ramps up
// its reads take less than pressFraction of it (what comes is the window's later pieces,
// duplicates, background), and pacing the copy then would keep it slow (the WAN lab's
// copy read 2.5 MB/s for three seconds, every read waiting). A viewer's reads, once it has
// its position, wait for nothing.
const pressLinger = time.Second

// pressing tells whether reads take about what we download: over the last tick, or since
// it once a quarter second has passed (a copy that just started); or whether reads have
// waited for pressWait (it notes, in waitFrom, since when they wait); or whether they
// pressed and a read has waited within pressLinger (waitSeen). With no rate measured
// yet, a read that waits presses.
func (t *Torrent) pressing(now time.Time) bool {
	switch {
	case len(t.waiting) == 0:
		t.waitFrom = time.Time{}
	case t.waitFrom.IsZero():
		t.waitFrom, t.waitSeen = now, now
	default:
		t.waitSeen = now
		if t.waitedLong(now) {
			return true
		}
	}
	if t.pressed && now.Sub(t.waitSeen) < pressLinger {
		return true
	}
	down := t.downTotal
	if down <= 0 {
		return len(t.waiting) > 0
	}
	read := t.readRate.recent()
	if el := now.Sub(t.lastTick); el >= 250*time.Millisecond {
		read = max(read, float64(t.readBytes)/el.Seconds())
	}
	return read >= pressFraction*down
}

// pipelineDepth is how many requests to keep at p: its measured rate (rateMeter.recent)
// over requestHorizon plus a round trip (the bandwidth-delay product, so a distant peer is
// never idle waiting for our next request), or twice the blocks of its last round trip
// (countRoundTrip) when more and the download takes all it can, or more when the pipeline
// has proven too shallow (pipeBoost).
func (t *Torrent) pipelineDepth(p *peerConn, now time.Time) int {
	horizon := requestHorizon + t.pk.RTT(p.key).Seconds()
	d := int(p.downRate.recent()*horizon/metainfo.BlockSize) + minPipeline
	if t.takesAll(now) {
		d = max(d, 2*p.rttBlocks+minPipeline)
	}
	return min(max(d, p.pipeBoost), p.reqq, maxPipeline)
}

// takesAll tells whether the download takes all it can, which pipelineDepth's round-trip
// floor is for: reads press on the evidence of a measured rate, none having waited
// pressWait (a copy), or no read head wants anything, nor did lately. Not while a viewer
// reads, nor while reads press only because one waits (before the first rate is measured,
// or for pressWait: a seek on a fresh mount). A seek's piece is shared among peers still
// in TCP's slow start, and the floor let them take more of it than they delivered in
// time: the WAN lab's fresh 4 MiB seeks took 1.44 s, 1.31 without it.
func (t *Torrent) takesAll(now time.Time) bool {
	return t.pressed && t.downTotal > 0 && !t.waitedLong(now) || len(t.waiting) == 0 && len(t.pins) == 0 && !t.readLately(now)
}

// waitedLong tells whether reads have waited pressWait without a break (waitFrom, which
// pressing keeps).
func (t *Torrent) waitedLong(now time.Time) bool {
	return !t.waitFrom.IsZero() && now.Sub(t.waitFrom) >= pressWait
}

// batchGap: a peer that let this long pass between two blocks of a tick, and delivered
// a whole pipeline's worth in that tick, answers in batches.
const batchGap = 250 * time.Millisecond

// countRoundTrip counts a block in for the round trip it came in. A connection in TCP's
// slow start doubles what it carries every round trip, and a pipeline sized from the
// last tick's rate (up to a second old, an average over that second) holds a fraction of
// it: the seeder then has nothing more to send, the connection stops growing, and the WAN
// lab's 8 MiB/s seeder 200 ms away was held to a third of its rate for a second by our
// requests. Twice the last round trip's blocks outstanding lets it double (pipelineDepth).
func (t *Torrent) countRoundTrip(p *peerConn, now time.Time) {
	rtt := max(t.pk.RTT(p.key), 10*time.Millisecond)
	if el := now.Sub(p.rttFrom); el >= rtt {
		p.rttBlocks = p.rttCount
		if el >= 2*rtt {
			p.rttBlocks = 0 // a pause: the last count is stale
		}
		p.rttFrom, p.rttCount = now, 0
	}
	p.rttCount++
}

// adaptPipeline runs each tick. Some peers (Transmission, aria2c with an upload limit)
// answer queued requests in batches about once a second, and a depth sized from their
// rate would then pin the rate: a peer that delivered a whole pipeline's worth of blocks
// in one tick, in batches (batchGap), was held back by the pipeline. Such a pipeline
// doubles, like TCP's slow start; one that is far from used shrinks back toward the
// rate-based depth. A peer that sends evenly at its rate also delivers more than a
// pipeline's worth a tick (the depth holds only requestHorizon of its rate and a round
// trip), but a deeper pipeline there only makes every block we ask wait longer in its
// queue: in the WAN lab the 1 MiB/s seeder's queue held 1.5 s of blocks, and a copy's
// next piece, asked there, kept the reader waiting.
func (t *Torrent) adaptPipeline(p *peerConn, now time.Time) {
	d := t.pipelineDepth(p, now)
	switch {
	case p.peerChoking || !p.amInterested:
	case p.blocksThisTick >= d && p.longestGap >= batchGap:
		p.pipeBoost = min(2*d, maxPipeline)
	case p.batchBoosted:
		// Deepened by a batch within the tick (noteBatch): judged at the next.
	case p.blocksThisTick < d/2 || p.longestGap < batchGap:
		p.pipeBoost = p.pipeBoost * 3 / 4
	}
	p.blocksThisTick = 0
	p.longestGap = 0
	p.batchBoosted = false
}

// batchBoost is how much deeper a batch that held every request we had out makes the
// pipeline at once (noteBatch).
const batchBoost = 4

// noteBatch counts a block that arrived from p (before p.lastBlock is set to now) into
// the peer's batches. A rate-limited Transmission sends in bursts every half second, each
// burst what we had asked up to its quota for the half second. A fresh peer's pipeline is
// minPipeline deep, a quarter of what a 2 MiB/s Transmission sends in a burst, and
// adaptPipeline, at the tick, deepens it only after one or two more bursts: a fresh 4 MiB
// seek against four of them took three bursts after the unchoke, 1.6 s. A burst that
// brings every request that was out when it began, after a silence of batchGap (since the
// last block, or since the unchoke for the first), shows the pipeline held the peer back:
// it is made batchBoost times deeper at once, and the next burst can bring the rest. The
// burst must come within half of batchGap.
func (t *Torrent) noteBatch(p *peerConn, now time.Time) {
	since := p.lastBlock
	if since.Before(p.lastUnchoked) {
		since = p.lastUnchoked
	}
	if now.Sub(since) >= batchGap {
		p.batchN, p.batchOwed, p.batchFrom = 0, t.pk.Outstanding(p.key)+1, now // the picker has counted this block in
	}
	if p.batchOwed == 0 {
		return
	}
	if now.Sub(p.batchFrom) > batchGap/2 {
		// Not together: a far peer in TCP's slow start also answers a silence with a
		// trickle, one round trip's window at a time.
		p.batchOwed = 0
		return
	}
	if p.batchN++; p.batchN < p.batchOwed {
		return
	}
	p.batchOwed = 0
	if d := t.pipelineDepth(p, now); p.batchN >= d {
		p.pipeBoost = min(batchBoost*d, maxPipeline)
		p.batchBoosted = true
		t.batchBoosts++
		p.log.WithFields(logrus.Fields{"batch": p.batchN, "depth": p.pipeBoost}).Debug("a batch held every request out: pipeline deepened")
		p.blocksThisTick, p.longestGap = 0, 0 // adaptPipeline judges the new depth on a tick of its own
	}
}

// fill requests blocks from p until its pipeline is as deep as its rate deserves.
func (t *Torrent) fill(p *peerConn) {
	now := time.Now()
	if pr := t.pressing(now); pr != t.pressed {
		t.pressed = pr
		t.pk.SetPressing(pr)
		t.log.WithField("pressing", pr).Trace("reads press")
	}
	if p.peerChoking {
		t.fillAllowedFast(p)
		return
	}
	if !p.amInterested || t.err != nil || t.disk.writeBytes > maxWriteBacklog {
		return
	}
	depth := t.pipelineDepth(p, now)
	n := depth - t.pk.Outstanding(p.key)
	if n <= 0 {
		return
	}
	if n < depth/topUpEvery && !t.readerAbout(now) {
		// A block in, a request out would cost both sides a message, a system call and a
		// wake-up per block; with nobody reading, the pipeline is topped up a quarter at a
		// time instead, and stays at least three quarters deep.
		return
	}
	for _, b := range t.pick(p.key, n, now) {
		t.trace(p, "request", b.Piece, b.Begin)
		p.send(wire.Message{ID: wire.Request, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
	}
	if len(t.deferred) > 0 {
		ev := t.deferred
		t.deferred = nil
		t.evict(ev)
	}
}

// pieceVerified announces a new piece and wakes the reads waiting for it.
func (t *Torrent) pieceVerified(i int) {
	t.piecePresent(i)
	for _, p := range t.peers.list {
		p.send(wire.Message{ID: wire.Have, Index: uint32(i)})
		if p.amInterested {
			t.updateInterest(p)
		}
	}
	if t.ledger.PresentCount() == t.info.NumPieces() {
		select {
		case <-t.complete:
		default:
			close(t.complete)
			t.log.Info("download complete")
			if t.announcer != nil {
				t.announcer.Completed()
			}
		}
	}
	if t.ticks%4 == 0 {
		t.publishStats(time.Now())
	}
}

func (t *Torrent) publishStats(now time.Time) {
	s := &Stats{
		Pieces:        t.info.NumPieces(),
		PiecesDone:    t.ledger.PresentCount(),
		Total:         t.info.TotalLength,
		BytesDone:     t.ledger.PresentBytes(),
		Peers:         len(t.peers.list),
		Downloaded:    t.downloaded.Load(),
		Uploaded:      t.uploaded.Load(),
		Err:           t.err,
		Banned:        len(t.banned),
		BlockReleases: t.blockReleases,
	}
	for _, ws := range t.webSeeds {
		s.DownRate += ws.downRate.rate
		if !ws.resting {
			s.WebSeeds++
		}
	}
	select {
	case <-t.complete:
		s.Complete = true
	default:
	}
	for _, p := range t.peers.list {
		s.DownRate += p.downRate.rate
		s.UpRate += p.upRate.rate
		if p.hasAll || p.has.All() {
			s.Seeds++
		}
		if connEncryption(p.conn) == mse.RC4 {
			s.Encrypted++
		}
	}
	t.stats.Store(s)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// trace logs one block event (request, cancel, block) at Trace level, for diagnosing how
// long a seek's blocks spend at which peer. The check keeps the per-block path free of
// allocations when tracing is off.
func (t *Torrent) trace(p *peerConn, what string, piece, begin int) {
	if t.log.Logger.IsLevelEnabled(logrus.TraceLevel) {
		p.log.WithFields(logrus.Fields{"piece": piece, "begin": begin}).Trace(what)
	}
}
