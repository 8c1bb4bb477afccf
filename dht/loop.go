package dht

import (
	"net"
	"net/netip"
	"time"
)

// Loop timing and bounds.
const (
	maintEvery     = 5 * time.Second  // token rotation, expiry, refresh, bootstrap retries
	refreshAfter   = 15 * time.Minute // a bucket unchanged this long is refreshed
	firstBootRetry = 2 * time.Second  // self-lookup retries while a table is thin...
	maxBootRetry   = 5 * time.Minute  // ...backing off to this
	maxRuns        = 64               // lookups running at once
	maxPings       = 8                // liveness pings per maintenance round
)

// lookupRun is a lookup the loop is running: the pure lookup plus what to do with its results.
type lookupRun struct {
	lk        *lookup
	v6        bool
	getPeers  bool
	port      uint16   // announce this port when done; 0 = no announce
	box       *peerBox // where found peers go; nil for internal lookups
	bootstrap bool
}

// loop is the node's one goroutine that owns the routing tables, the pending queries, the
// peer store, the token secrets and the lookups. Nothing else touches them.
type loop struct {
	n      *Node
	t4, t6 *table // nil for a family the socket cannot reach
	txs    *transactions
	store  *peerStore
	tokens *tokens
	runs   map[*lookupRun]struct{}
	out    tokenBucket // outgoing query rate

	seeds     []netip.AddrPort // saved nodes and resolved bootstrap nodes
	resolving bool             // the bootstrap list is being resolved
	parked    []findRequest    // lookups with no node to start from yet, waiting for one
	booting   int              // bootstrap lookups running
	nextBoot  time.Time        // no bootstrap before this
	bootWait  time.Duration    // the wait after the next bootstrap
	announced bool             // "bootstrap done" logged at Info once
	lastMaint time.Time

	external externalVotes // where other nodes see us (BEP 42)

	queriesIn, queriesOut, repliesIn, timeouts, unsolicited uint64
}

func newLoop(n *Node, seeds []netip.AddrPort, now time.Time) *loop {
	l := &loop{
		n:         n,
		txs:       newTransactions(n.cfg.MaxPending),
		store:     newPeerStore(n.cfg.MaxTorrents, n.cfg.MaxPeersPerTorrent),
		tokens:    newTokens(now),
		runs:      map[*lookupRun]struct{}{},
		seeds:     seeds,
		resolving: len(n.cfg.Bootstrap) > 0,
		lastMaint: now,
		bootWait:  firstBootRetry,
	}
	if n.v4 {
		l.t4 = newTable(n.id, now)
	}
	if n.v6 {
		l.t6 = newTable(n.id, now)
	}
	return l
}

func (l *loop) run() {
	n := l.n
	defer close(n.done)
	tick := time.NewTicker(min(max(n.cfg.QueryTimeout/slowFraction/4, 20*time.Millisecond), 125*time.Millisecond))
	defer tick.Stop()
	l.maybeBootstrap(time.Now())
	for {
		select {
		case <-n.closing:
			l.cancelAll()
			n.saveErr = l.saveState(time.Now())
			return
		case p := <-n.queries:
			l.onQuery(p, time.Now())
		case p := <-n.replies:
			l.onResponse(p, time.Now())
		case r := <-n.findC:
			l.startFind(r, time.Now())
		case b := <-n.cancelC:
			l.cancelFind(b)
		case a := <-n.addNodeC:
			l.ping(a, time.Now())
		case c := <-n.statsC:
			c <- l.stats(time.Now())
		case s := <-n.seedC:
			l.resolving = false
			l.seeds = append(l.seeds, s...)
			l.nextBoot, l.bootWait = time.Time{}, firstBootRetry
			l.maybeBootstrap(time.Now())
			l.unpark(time.Now())
		case now := <-tick.C:
			l.tick(now)
		}
	}
}

// tableFor returns the table for addr's family, nil when we cannot reach it.
func (l *loop) tableFor(addr netip.AddrPort) *table {
	if addr.Addr().Is4() {
		return l.t4
	}
	return l.t6
}

// slowFraction: a lookup's query unanswered for QueryTimeout/slowFraction (500 ms by
// default) no longer holds one of the lookup's alpha slots, so dead nodes met on the way
// (the public DHT has many) slow a lookup down by that much rather than the full timeout.
// Its answer is still taken if it comes before the timeout.
const slowFraction = 4

func (l *loop) tick(now time.Time) {
	for _, e := range l.txs.slow(now) {
		if run := e.p.lookup; run != nil {
			if _, ok := l.runs[run]; ok {
				run.lk.slow(e.addr)
			}
		}
	}
	for _, e := range l.txs.expire(now) {
		l.timeouts++
		if t := l.tableFor(e.addr); t != nil {
			t.failed(e.addr, now)
		}
		if run := e.p.lookup; run != nil {
			if _, ok := l.runs[run]; ok {
				run.lk.failed(e.addr)
			}
		}
	}
	for run := range l.runs {
		l.drive(run, now)
	}
	l.maybeBootstrap(now)
	if now.Sub(l.lastMaint) < maintEvery {
		return
	}
	l.lastMaint = now
	l.tokens.maybeRotate(now)
	l.store.expire(now)
	for _, t := range []*table{l.t4, l.t6} {
		if t == nil {
			continue
		}
		for _, target := range t.staleBuckets(now, refreshAfter) {
			if len(l.runs) >= maxRuns/2 {
				break
			}
			l.startRun(&lookupRun{lk: newLookup(target), v6: t == l.t6}, now)
		}
		for _, o := range t.questionable(now, maxPings) {
			l.ping(o.addr, now)
		}
	}
}

// maybeBootstrap starts a lookup of our own ID while a table is thin (fewer than bucketSize
// good nodes), seeded from the table and from the saved and bootstrap nodes. It retries
// after firstBootRetry, doubling up to maxBootRetry: a quiet network brings new nodes only
// through our own lookups.
func (l *loop) maybeBootstrap(now time.Time) {
	if l.booting > 0 || now.Before(l.nextBoot) {
		return
	}
	started := false
	for _, t := range []*table{l.t4, l.t6} {
		if t == nil {
			continue
		}
		if good, _ := t.count(now); good >= bucketSize {
			continue
		}
		run := &lookupRun{lk: newLookup(l.n.id), v6: t == l.t6, bootstrap: true}
		run.lk.addNodes(t.closest(l.n.id, 2*bucketSize, now))
		run.lk.addSeeds(l.seedsFor(run.v6))
		if len(run.lk.cands)+len(run.lk.seeds) == 0 {
			continue
		}
		started = true
		l.booting++
		l.startRun(run, now)
	}
	if started {
		l.nextBoot = now.Add(l.bootWait)
		l.bootWait = min(2*l.bootWait, maxBootRetry)
	}
}

func (l *loop) seedsFor(v6 bool) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range l.seeds {
		if s.Addr().Is4() != v6 && usableNodeAddr(s) {
			out = append(out, s)
		}
	}
	return out
}

func (l *loop) startRun(run *lookupRun, now time.Time) {
	l.runs[run] = struct{}{}
	l.drive(run, now)
}

// canQuery says whether a query may go out now: room for one more in flight and the outgoing
// rate allows it.
func (l *loop) canQuery(now time.Time) bool {
	r := l.n.cfg.OutgoingPerSecond
	return !l.txs.full() && l.out.peek(now, r, 2*r)
}

// sendQuery sends a query to addr and registers it. It reports false when the query could not
// go out.
func (l *loop) sendQuery(to netip.AddrPort, method string, args *msgArgs, run *lookupRun, now time.Time) bool {
	if !usableNodeAddr(to) || l.tableFor(to) == nil {
		return false
	}
	r := l.n.cfg.OutgoingPerSecond
	if l.txs.full() || !l.out.take(now, r, 2*r) {
		return false
	}
	args.ID = string(l.n.id[:])
	tid, _ := l.txs.add(to, &pendingQuery{method: method, deadline: now.Add(l.n.cfg.QueryTimeout),
		slowAt: now.Add(l.n.cfg.QueryTimeout / slowFraction), lookup: run})
	if !l.send(to, &msg{T: tid, Y: "q", Q: method, A: args}) {
		l.txs.take(tid, to)
		return false
	}
	l.queriesOut++
	return true
}

func (l *loop) send(to netip.AddrPort, m *msg) bool {
	b, err := encodeMsg(m)
	if err != nil {
		l.n.log.WithError(err).Warn("dht: encode")
		return false
	}
	if _, err := l.n.conn.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		l.n.log.WithError(err).WithField("to", to).Debug("dht: send")
		return false
	}
	return true
}

func (l *loop) ping(addr netip.AddrPort, now time.Time) {
	l.sendQuery(addr, "ping", &msgArgs{}, nil, now)
}

func (l *loop) stats(now time.Time) Stats {
	s := Stats{
		ExternalIP:  l.externalIP(),
		Torrents:    l.store.torrents(),
		Peers:       l.store.peers(),
		Lookups:     len(l.runs),
		Pending:     len(l.txs.m),
		QueriesIn:   l.queriesIn,
		QueriesOut:  l.queriesOut,
		RepliesIn:   l.repliesIn,
		Timeouts:    l.timeouts,
		Unsolicited: l.unsolicited,
		Malformed:   l.n.ingress.malformed.Load(),
		RateLimited: l.n.ingress.rateLimited.Load(),
		QueueFull:   l.n.ingress.queueFull.Load(),
	}
	if l.t4 != nil {
		s.GoodNodes, s.Nodes = l.t4.count(now)
	}
	if l.t6 != nil {
		s.GoodNodes6, s.Nodes6 = l.t6.count(now)
	}
	return s
}

// cancelAll ends every lookup on Close so no FindPeers waits on a box that will never finish.
func (l *loop) cancelAll() {
	for run := range l.runs {
		delete(l.runs, run)
		if run.box != nil {
			run.box.finish()
		}
	}
}

// externalIP is our address as other nodes agree to see it, or the zero Addr.
func (l *loop) externalIP() netip.Addr {
	if ip, ok := l.external.ip(); ok {
		return ip
	}
	return netip.Addr{}
}
