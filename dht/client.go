package dht

import (
	"slices"
	"time"
)

// Bounds on what we take from one answer.
const (
	maxNodesIn  = 16  // nodes per family
	maxValuesIn = 100 // peers
)

// onResponse handles an answer or an error for one of our queries.
func (l *loop) onResponse(p packet, now time.Time) {
	m, from := &p.m, p.from
	pq, ok := l.txs.take(m.T, from)
	if !ok {
		l.unsolicited++
		return
	}
	run := pq.lookup
	if _, alive := l.runs[run]; !alive {
		run = nil
	}
	if m.Y != "r" || len(m.R.ID) != 20 || nodeID([]byte(m.R.ID)) == l.n.id {
		if m.Y == "e" {
			l.n.log.WithField("from", from).Debugf("dht: %s: %v", pq.method, m.E)
		}
		if run != nil {
			run.lk.failed(from)
			l.drive(run, now)
		}
		return
	}
	l.repliesIn++
	if m.IP != "" {
		l.external.add(from.Addr(), m.IP)
	}
	id := nodeID([]byte(m.R.ID))
	if t := l.tableFor(from); t != nil && m.RO == 0 {
		for _, o := range t.replied(id, from, isSecureID(id, from.Addr()), now) {
			l.ping(o.addr, now)
		}
	}
	if run == nil {
		return
	}
	run.lk.replied(from, id, m.R.Token, l.nodesFrom(m.R, run.v6))
	if run.getPeers && run.box != nil && len(m.R.Values) > 0 {
		if peers := parseValues(m.R.Values, maxValuesIn); len(peers) > 0 {
			run.box.put(peers)
		}
	}
	l.drive(run, now)
}

// nodesFrom takes the usable nodes of one family from an answer.
func (l *loop) nodesFrom(r *msgReply, v6 bool) []nodeInfo {
	s := r.Nodes
	if v6 {
		s = r.Nodes6
	}
	nodes, err := parseNodes(s, v6, maxNodesIn)
	if err != nil {
		return nil
	}
	out := nodes[:0]
	for _, n := range nodes {
		if n.id != l.n.id && usableNodeAddr(n.addr) && n.addr.Addr().Is4() != v6 {
			out = append(out, n)
		}
	}
	return out
}

// drive sends the queries run may send now and finishes it when it is done.
func (l *loop) drive(run *lookupRun, now time.Time) {
	for l.canQuery(now) {
		addr, ok := run.lk.next()
		if !ok {
			break
		}
		want := []string{"n4"}
		if run.v6 {
			want = []string{"n6"}
		}
		args := &msgArgs{Want: want}
		method := "find_node"
		if run.getPeers {
			method, args.InfoHash = "get_peers", string(run.lk.target[:])
		} else {
			args.Target = string(run.lk.target[:])
		}
		if !l.sendQuery(addr, method, args, run, now) {
			run.lk.failed(addr)
		}
	}
	if run.lk.done() {
		l.finishRun(run, now)
	}
}

func (l *loop) finishRun(run *lookupRun, now time.Time) {
	delete(l.runs, run)
	if run.getPeers && run.port != 0 {
		for _, c := range run.lk.closestAnswered(bucketSize) {
			if c.token == "" {
				continue
			}
			l.sendQuery(c.addr, "announce_peer", &msgArgs{
				InfoHash: string(run.lk.target[:]),
				Port:     int(run.port),
				Token:    c.token,
			}, nil, now)
		}
	}
	if run.box != nil {
		run.box.finish()
	}
	if run.bootstrap {
		l.booting--
		t := l.t4
		if run.v6 {
			t = l.t6
		}
		good, total := t.count(now)
		log := l.n.log.WithFields(map[string]any{"good": good, "nodes": total, "v6": run.v6})
		if good > 0 && !l.announced {
			l.announced = true
			log.Info("dht: bootstrap done")
		} else {
			log.Debug("dht: self-lookup done")
		}
		if l.booting == 0 {
			l.unpark(now)
		}
	}
}

// findRequest asks the loop for a get_peers lookup whose peers go to box.
type findRequest struct {
	target nodeID
	port   uint16
	box    *peerBox
}

// startFind starts a lookup per address family we can reach, seeded from the table and, when
// the table is thin, from the seeds.
func (l *loop) startFind(r findRequest, now time.Time) {
	var runs []*lookupRun
	for _, t := range []*table{l.t4, l.t6} {
		if t == nil || len(l.runs)+len(runs) >= maxRuns {
			continue
		}
		run := &lookupRun{lk: newLookup(r.target), v6: t == l.t6, getPeers: true, port: r.port, box: r.box}
		nodes := t.closest(r.target, 2*bucketSize, now)
		run.lk.addNodes(nodes)
		if len(nodes) < bucketSize {
			run.lk.addSeeds(l.seedsFor(run.v6))
		}
		if len(run.lk.cands)+len(run.lk.seeds) > 0 {
			runs = append(runs, run)
		}
	}
	if len(runs) == 0 && (l.resolving || l.booting > 0) {
		// Nothing to start from yet, but the bootstrap will bring nodes: wait for them
		// rather than end the round empty (the next would come a retry later).
		l.parked = append(l.parked, r)
		return
	}
	r.box.start(len(runs))
	// Our own store counts too: in a small network we may be one of the nearest nodes.
	if local := l.store.sample(r.target, maxValuesIn, l.t4 != nil, l.t6 != nil, now); len(local) > 0 {
		r.box.put(local)
	}
	for _, run := range runs {
		l.startRun(run, now)
	}
}

// unpark starts the lookups that were waiting for nodes to start from.
func (l *loop) unpark(now time.Time) {
	parked := l.parked
	l.parked = nil
	for _, r := range parked {
		l.startFind(r, now)
	}
}

func (l *loop) cancelFind(b *peerBox) {
	l.parked = slices.DeleteFunc(l.parked, func(r findRequest) bool { return r.box == b })
	for run := range l.runs {
		if run.box == b {
			delete(l.runs, run)
		}
	}
}
