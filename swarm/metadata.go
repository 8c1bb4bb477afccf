package swarm

// BEP 9 (ut_metadata): fetching a magnet link's info dictionary from peers, and serving
// ours to peers that came with a magnet link.
//
// Ownership: a fetch runs on the goroutine that called FetchMetadata, which owns the peer
// candidates and the dials; each connection has one goroutine that talks to its peer, and
// the assemblies of pieces they share are guarded by fetch.mu. Serving runs on the
// torrent's loop.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
	"torrentfs/swarm/wire"
	"torrentfs/tracker"
)

const (
	// metadataExtID is the extended message id we ask peers to send ut_metadata under.
	metadataExtID = 1
	// MaxMetadataSize bounds the info dictionary we accept from peers: a peer's claim is
	// what we allocate, and real torrents stay far below (20 bytes a piece).
	MaxMetadataSize = 16 << 20
	// hybridLayerWait is how long a hybrid's fetch waits for piece layers once it has the
	// info dictionary, unless every peer failed to give them sooner.
	hybridLayerWait = 10 * time.Second
	// fetchConns is how many peers a fetch talks to at once.
	fetchConns = 8
	// fetchPieceWait is how long a peer has to answer one metadata request.
	fetchPieceWait = 20 * time.Second
	// fetchLeft is the `left` a fetch announces: the size is unknown, and a tracker should
	// take us for a leecher.
	fetchLeft = 1 << 40
	// metadataServeBudget is how many metadata pieces beyond the whole dictionary one
	// connection may ask us for; past it we reject, so a peer cannot make us queue
	// unbounded copies.
	metadataServeBudget = 16
)

// FetchMetadata gets the info dictionary of the magnet's torrent from peers (BEP 9): those
// given, the magnet's x.pe peers and the ones its trackers return. It asks several peers
// at once, spreads the 16 KiB pieces over them, checks the SHA-1 against the info-hash (for
// a link with only a v2 info-hash, the SHA-256 against that, with the peers met under its
// first 20 bytes) and validates the dictionary; a peer that sends bad data is dropped and
// not dialed again. A v2-only torrent also needs the piece layers of its files longer than
// a piece, which a torrent file carries beside the info dictionary: they are asked of the
// same peers in BEP 52 hash requests, each answer checked against its file's pieces root.
// A hybrid's result has both info-hashes (the v2 one is the SHA-256 of its info dictionary)
// and the piece layers its peers gave within hybridLayerWait (metadata_layers.go): without
// them it is verified by SHA-1 alone. It returns when the metadata is verified or ctx ends.
// Its connections are closed before it returns: the torrent made from the result dials the
// peers again.
//
// trackers overrides the magnet's tr list when non-nil (empty: no trackers); the result's
// announce list is the magnet's either way.
func (c *Client) FetchMetadata(ctx context.Context, m *metainfo.Magnet, peers []netip.AddrPort, trackers []string) (*metainfo.MetaInfo, error) {
	start := time.Now()
	f := &fetch{
		c:      c,
		ih:     m.SwarmHash(),
		log:    c.log.WithField("torrent", m.SwarmHash().HexString()),
		asm:    make(map[int]*assembly),
		done:   make(chan struct{}),
		wake:   make(chan struct{}),
		infoIn: make(chan struct{}),
	}
	if !m.HasV1() {
		f.v2 = m.InfoHashV2
	}
	if trackers == nil {
		trackers = m.Trackers
	}
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	found := make(chan []netip.AddrPort, len(trackers)+1)
	for _, u := range trackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.announce(fctx, u, found)
		}()
	}
	if len(m.Peers) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.resolve(fctx, m.Peers, found)
		}()
	}
	// The DHT and local discovery, for a magnet with dead trackers or none. (A magnet does
	// not say whether its torrent is private; a private torrent's peers ignore the DHT.)
	for _, src := range c.discovery().sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			src.Find(fctx, f.ih, c.Port(), func(addrs []netip.AddrPort) {
				if first && len(addrs) > 0 {
					first = false
					f.log.Infof("first %d peers from %s after %s", len(addrs), src.Name, time.Since(start).Round(time.Millisecond))
				}
				select {
				case found <- addrs:
				case <-fctx.Done():
				}
			})
		}()
	}

	cands := make(map[netip.AddrPort]*fetchCand)
	add := func(addrs []netip.AddrPort) {
		for _, a := range addrs {
			a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
			if !a.IsValid() || a.Port() == 0 {
				continue
			}
			if f.isSelf(a) {
				continue
			}
			if cands[a] == nil {
				cands[a] = &fetchCand{}
			}
		}
	}
	add(peers)
	ended := make(chan sessionEnd, fetchConns)
	active, tried := 0, 0
	var lastErr error
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	infoIn := f.infoIn
	var layerWait <-chan time.Time // a hybrid's, once its info dictionary is in
	optional := func() *metainfo.MetaInfo {
		mi := f.metaInfo(m)
		f.log.Infof("piece layers of %d of the hybrid's files longer than a piece; the others' reads wait for whole pieces", len(mi.PieceLayers))
		return mi
	}
	for {
		now := time.Now()
		for a, cd := range cands {
			if active >= fetchConns {
				break
			}
			if cd.active || cd.banned || now.Before(cd.nextTry) {
				continue
			}
			cd.active = true
			active++
			tried++
			wg.Add(1)
			go func() {
				defer wg.Done()
				ban, err := f.session(fctx, a)
				ended <- sessionEnd{addr: a, ban: ban, err: err}
			}()
		}
		select {
		case <-f.done:
			if f.err != nil {
				return nil, fmt.Errorf("fetch metadata of %s: %w", f.ih, f.err)
			}
			return f.metaInfo(m), nil
		case <-infoIn:
			infoIn = nil
			f.mu.Lock()
			if f.wantsLayers() && f.layers.optional {
				t := time.NewTimer(hybridLayerWait)
				defer t.Stop()
				layerWait = t.C
			}
			f.mu.Unlock()
		case <-layerWait:
			return optional(), nil
		case addrs := <-found:
			add(addrs)
		case e := <-ended:
			active--
			cd := cands[e.addr]
			cd.active = false
			if errors.Is(e.err, errV1Conn) {
				cd.nextTry = time.Time{} // dialed again by the v2 hash at once
				continue
			}
			if layerWait != nil {
				cd.layerFails++
				if active == 0 && allFailedLayers(cands) {
					return optional(), nil
				}
			}
			cd.fails++
			// Tried again later, longer each time: a seeder may still be starting.
			cd.nextTry = time.Now().Add(time.Second << min(cd.fails, 5))
			log := f.log.WithField("peer", e.addr)
			if e.ban {
				cd.banned = true
				log.WithError(e.err).Warn("dropping peer for bad metadata")
			} else if e.err != nil {
				log.WithError(e.err).Debug("metadata peer gone")
			}
			if e.err != nil {
				lastErr = e.err
			}
		case <-tick.C:
		case <-ctx.Done():
			why := fmt.Sprintf("tried %d peers", len(cands))
			switch {
			case len(cands) == 0:
				why = "found no peers"
			case lastErr != nil:
				why += fmt.Sprintf("; last error: %v", lastErr)
			}
			return nil, fmt.Errorf("fetch metadata of %s: no peer sent the metadata within %s (%s): %w",
				f.ih, time.Since(start).Round(100*time.Millisecond), why, ctx.Err())
		}
	}
}

// fetchCand is a peer address a fetch may dial; the fetch goroutine owns it.
type fetchCand struct {
	active, banned bool
	fails          int
	layerFails     int // sessions ended while a hybrid's piece layers were wanted
	nextTry        time.Time
}

// allFailedLayers tells whether every peer a hybrid's fetch may dial ended twice without
// giving its piece layers (once may be a lost race with its v1 connection's end).
func allFailedLayers(cands map[netip.AddrPort]*fetchCand) bool {
	for _, cd := range cands {
		if !cd.banned && cd.layerFails < 2 {
			return false
		}
	}
	return true
}

// sessionEnd is how a connection's goroutine reports that it ended.
type sessionEnd struct {
	addr netip.AddrPort
	ban  bool
	err  error
}

// fetch is the state shared by a fetch's connections.
type fetch struct {
	c   *Client
	ih  metainfo.Hash    // what peers are asked for: the v1 info-hash, else the truncated v2 one
	v2  metainfo.Hash256 // the link's v2 info-hash when it has no v1 one: metadata checked by it
	log *logrus.Entry

	mu   sync.Mutex
	asm  map[int]*assembly // by the metadata_size peers claim: a liar gets its own
	wake chan struct{}     // closed and replaced when a waiting connection may have work
	done chan struct{}     // closed once result or err is set
	info *metainfo.Info
	raw  []byte
	err  error // the metadata matched the info-hash but is no valid info dictionary
	// infoIn is closed once info or err is set.
	infoIn chan struct{}
	// A v2-only or hybrid torrent's piece layers, once the info dictionary is in
	// (fetchLayers).
	layers *layerFetch
	// hybridV2 is the v2 info-hash of a hybrid found by its v1 one, once its info
	// dictionary is in: the layers are fetched over connections named by it (layerHash).
	hybridV2 metainfo.Hash256
}

// assembly gathers the pieces of metadata of one claimed size.
type assembly struct {
	size   int
	pieces [][]byte
	from   []netip.AddrPort // who sent each piece
	asked  []int            // requests in flight per piece
	// strict is set after a hash mismatch with pieces from several peers: from then on one
	// peer, the owner, fetches everything, so the next mismatch names the liar.
	strict bool
	owner  netip.AddrPort
}

func numMetadataPieces(size int) int {
	return (size + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen
}

func metadataPieceSize(size, piece int) int {
	return min(wire.MetadataPieceLen, size-piece*wire.MetadataPieceLen)
}

// metaInfo builds the torrent from the verified metadata and the magnet's links.
func (f *fetch) metaInfo(m *metainfo.Magnet) *metainfo.MetaInfo {
	mi := &metainfo.MetaInfo{Info: *f.info, InfoBytes: f.raw, URLList: m.WebSeeds}
	if m.HasV1() {
		mi.InfoHash = m.InfoHash
		if f.info.Version.HasV2() {
			mi.InfoHashV2 = sha256.Sum256(f.raw) // a hybrid
		}
	} else {
		// Found by its v2 hash, which the SHA-256 matched: a v2-only torrent, or a hybrid.
		mi.InfoHashV2 = m.InfoHashV2
		if f.info.Version.HasV1() {
			mi.InfoHash = sha1.Sum(f.raw)
		}
	}
	if f.layers != nil {
		f.mu.Lock() // sessions may still be winding down
		mi.PieceLayers = f.layers.result()
		f.mu.Unlock()
	}
	for _, u := range m.Trackers {
		mi.AnnounceList = append(mi.AnnounceList, []string{u})
	}
	if len(m.Trackers) > 0 {
		mi.Announce = m.Trackers[0]
	}
	return mi
}

// announce asks one tracker for peers until the fetch ends, again after the tracker's
// minimum interval (at least a few seconds) since seeders keep arriving.
func (f *fetch) announce(ctx context.Context, url string, found chan<- []netip.AddrPort) {
	log := f.log.WithField("tracker", url)
	tc, err := tracker.NewClientFrom(url, f.c.bound)
	if err != nil {
		log.WithError(err).Warn("cannot use tracker")
		return
	}
	defer tc.Close()
	ev := tracker.EventStarted
	wait := time.Duration(0)
	for fails := 0; ; {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		resp, err := tc.Announce(ctx, tracker.AnnounceRequest{
			InfoHash: f.ih, PeerID: f.c.peerID, Port: f.c.Port(), Left: fetchLeft,
			Event: ev, NumWant: 50, Compact: true, IP: f.c.cfg.AnnounceIP,
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			wait = min(5*time.Second<<min(fails, 4), time.Minute)
			log.WithError(err).Debug("announce for metadata failed")
			continue
		}
		ev = tracker.EventNone
		addrs := make([]netip.AddrPort, 0, len(resp.Peers))
		for _, p := range resp.Peers {
			if !f.isSelf(p.Addr) {
				addrs = append(addrs, p.Addr)
			}
		}
		log.Debugf("tracker gave %d peers", len(addrs))
		if len(addrs) == 0 {
			// Nothing to fetch from: ask again soon (a seeder may be announcing just now),
			// backing off, rather than after the tracker's minimum interval.
			fails++
			wait = min(5*time.Second<<min(fails-1, 4), time.Minute)
			continue
		}
		fails = 0
		wait = min(max(resp.MinInterval, 5*time.Second), time.Minute)
		select {
		case found <- addrs:
		case <-ctx.Done():
			return
		}
	}
}

// isSelf tells whether a is our own listening address, as a tracker sees us.
func (f *fetch) isSelf(a netip.AddrPort) bool {
	la := f.c.Addr()
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	return la != nil && a.Port() == f.c.Port() && isLocalAddr(a.Addr(), la.String())
}

// resolve turns the magnet's x.pe host:port entries into addresses.
func (f *fetch) resolve(ctx context.Context, hostports []string, found chan<- []netip.AddrPort) {
	var addrs []netip.AddrPort
	for _, hp := range hostports {
		if ap, err := netip.ParseAddrPort(hp); err == nil {
			addrs = append(addrs, ap)
			continue
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			f.log.WithError(err).Warnf("ignoring peer %q of the magnet link", hp)
			continue
		}
		pn, err := net.LookupPort("tcp", port)
		if err != nil {
			f.log.WithError(err).Warnf("ignoring peer %q of the magnet link", hp)
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			f.log.WithError(err).Warnf("ignoring peer %q of the magnet link", hp)
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(pn)))
		}
	}
	select {
	case found <- addrs:
	case <-ctx.Done():
	}
}

// errBadPeer marks an error that bans the peer: it lied about or mangled the metadata.
type errBadPeer struct{ error }

func badPeer(format string, args ...any) error {
	return errBadPeer{fmt.Errorf(format, args...)}
}

// session talks to one peer until the metadata is complete, the peer fails or ctx ends.
func (f *fetch) session(ctx context.Context, addr netip.AddrPort) (ban bool, err error) {
	ih, v2 := f.ih, !f.v2.IsZero()
	if lh := f.layerHash(); lh != (metainfo.Hash{}) {
		ih, v2 = lh, true // only piece layers are left to fetch
	}
	var r wire.Reserved
	r.SetExtended(true)
	r.SetV2(v2) // as a v2-only torrent's connections do
	conn, hs, err := f.c.dial(ctx, addr, wire.Handshake{Reserved: r, InfoHash: ih, PeerID: f.c.peerID}, [20]byte{})
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &metaSession{f: f, conn: conn, r: wire.NewReader(conn, 0), addr: addr, v2: v2}
	err = s.run(ctx, hs)
	var bp errBadPeer
	if errors.As(err, &bp) {
		return true, bp.error
	}
	if ctx.Err() != nil {
		return false, nil
	}
	return false, err
}

// metaSession is one connection of a fetch, owned by its goroutine.
type metaSession struct {
	f    *fetch
	conn net.Conn
	r    *wire.Reader
	addr netip.AddrPort
	v2   bool  // named by a v2 info-hash: it may ask for piece layers
	id   uint8 // the peer's ut_metadata id
	size int
}

func (s *metaSession) run(ctx context.Context, hs wire.Handshake) error {
	if !hs.Reserved.Extended() {
		return errors.New("peer does not speak the extension protocol (BEP 10)")
	}
	eh := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: metadataExtID}, V: "torrentfs " + Version, P: int(s.f.c.Port())}
	b, err := eh.Encode()
	if err != nil {
		return err
	}
	if err := s.write(wire.Message{ID: wire.Extended, ExtID: 0, Payload: b}); err != nil {
		return fmt.Errorf("send extension handshake: %w", err)
	}
	theirs, err := s.readExtHandshake()
	if err != nil {
		return err
	}
	id := theirs.M[wire.ExtMetadata]
	switch {
	case id == 0:
		return errors.New("peer does not serve ut_metadata")
	case theirs.MetadataSize == 0:
		return errors.New("peer did not tell the metadata size")
	case theirs.MetadataSize > MaxMetadataSize:
		return badPeer("peer claims %d bytes of metadata, over the %d we accept", theirs.MetadataSize, MaxMetadataSize)
	}
	s.id, s.size = uint8(id), theirs.MetadataSize
	defer s.f.leave(s.addr, s.size)
	for {
		piece, wake, done := s.f.next(s.addr, s.size)
		if done {
			if !s.v2 && s.f.layerHash() != (metainfo.Hash{}) {
				return errV1Conn
			}
			return s.fetchLayers(ctx)
		}
		if piece < 0 {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		data, total, err := s.request(piece)
		s.f.unask(s.size, piece)
		if err != nil {
			return err
		}
		if err := s.f.put(s.addr, s.size, piece, total, data); err != nil {
			return err
		}
	}
}

func (s *metaSession) write(m wire.Message) error {
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.conn.Write(m.AppendTo(nil))
	return err
}

// readExtHandshake reads until the peer's extension handshake, skipping what comes before
// it (a bitfield, have-all, port...).
func (s *metaSession) readExtHandshake() (wire.ExtHandshake, error) {
	s.conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	for {
		m, err := s.r.Read()
		if err != nil {
			return wire.ExtHandshake{}, fmt.Errorf("wait for extension handshake: %w", err)
		}
		if m.Keepalive || m.ID != wire.Extended || m.ExtID != 0 {
			continue
		}
		h, err := wire.ParseExtHandshake(m.Payload)
		if err != nil {
			return wire.ExtHandshake{}, badPeer("extension handshake: %w", err)
		}
		return h, nil
	}
}

// request asks for one piece and reads until its answer.
func (s *metaSession) request(piece int) (data []byte, total int, err error) {
	b, err := wire.MetadataMessage{Type: wire.MetadataRequest, Piece: piece}.AppendTo(nil)
	if err != nil {
		return nil, 0, err
	}
	if err := s.write(wire.Message{ID: wire.Extended, ExtID: s.id, Payload: b}); err != nil {
		return nil, 0, fmt.Errorf("request metadata piece %d: %w", piece, err)
	}
	s.conn.SetReadDeadline(time.Now().Add(fetchPieceWait))
	for {
		m, err := s.r.Read()
		if err != nil {
			return nil, 0, fmt.Errorf("wait for metadata piece %d: %w", piece, err)
		}
		if m.Keepalive || m.ID != wire.Extended || m.ExtID != metadataExtID {
			continue
		}
		mm, err := wire.ParseMetadataMessage(m.Payload)
		if err != nil {
			return nil, 0, badPeer("metadata piece %d: %w", piece, err)
		}
		switch {
		case mm.Type == wire.MetadataRequest:
			// We have nothing to give yet.
			rb, err := wire.MetadataMessage{Type: wire.MetadataReject, Piece: mm.Piece}.AppendTo(nil)
			if err == nil {
				s.write(wire.Message{ID: wire.Extended, ExtID: s.id, Payload: rb})
			}
		case mm.Piece != piece:
			// An answer to a request we no longer wait for; never the case with one in flight.
		case mm.Type == wire.MetadataReject:
			return nil, 0, fmt.Errorf("peer rejected metadata piece %d", piece)
		default:
			return mm.Data, mm.TotalSize, nil
		}
	}
}

// next picks a piece for the peer at addr: one nobody asked for, else (the last pieces) one
// in flight elsewhere. piece is -1 when the peer has to wait for wake; done when the fetch
// has its result.
func (f *fetch) next(addr netip.AddrPort, size int) (piece int, wake <-chan struct{}, done bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raw != nil || f.err != nil {
		return -1, nil, true
	}
	a := f.asm[size]
	if a == nil {
		n := numMetadataPieces(size)
		a = &assembly{size: size, pieces: make([][]byte, n), from: make([]netip.AddrPort, n), asked: make([]int, n)}
		f.asm[size] = a
	}
	if a.strict {
		if !a.owner.IsValid() {
			a.owner = addr
		}
		if a.owner != addr {
			return -1, f.wake, false
		}
	}
	best := -1
	for i, p := range a.pieces {
		if p == nil && (best < 0 || a.asked[i] < a.asked[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, f.wake, false
	}
	a.asked[best]++
	return best, nil, false
}

func (f *fetch) unask(size, piece int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.asm[size]; a != nil {
		a.asked[piece]--
	}
}

// leave releases what a peer held when its connection ends.
func (f *fetch) leave(addr netip.AddrPort, size int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.asm[size]; a != nil && a.strict && a.owner == addr {
		// Its pieces go too: mixed with the next owner's they would blame nobody.
		for i := range a.pieces {
			a.pieces[i], a.from[i] = nil, netip.AddrPort{}
		}
		a.owner = netip.AddrPort{}
		f.wakeAll()
	}
}

func (f *fetch) wakeAll() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// matches tells whether raw is the info dictionary the fetch is for: its SHA-1 is the v1
// info-hash, or, for a link with only a v2 one, its SHA-256 is that.
func (f *fetch) matches(raw []byte) bool {
	if !f.v2.IsZero() {
		return sha256.Sum256(raw) == f.v2
	}
	return sha1.Sum(raw) == f.ih
}

// put stores a piece from the peer at addr and, once the assembly is whole, verifies it.
// An errBadPeer names a liar.
func (f *fetch) put(addr netip.AddrPort, size, piece, total int, data []byte) error {
	if total != size {
		return badPeer("metadata total_size %d differs from the metadata_size %d it announced", total, size)
	}
	if want := metadataPieceSize(size, piece); len(data) != want {
		return badPeer("metadata piece %d has %d bytes, want %d", piece, len(data), want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raw != nil || f.err != nil {
		return nil
	}
	a := f.asm[size]
	if a.pieces[piece] != nil {
		return nil // a duplicate from the last pieces' double requests
	}
	a.pieces[piece] = bytes.Clone(data)
	a.from[piece] = addr
	for _, p := range a.pieces {
		if p == nil {
			return nil
		}
	}
	raw := bytes.Join(a.pieces, nil)
	if f.matches(raw) {
		info, err := metainfo.ParseInfo(raw)
		if err != nil {
			// Nobody can send better: the info-hash itself names this dictionary.
			f.err = fmt.Errorf("metadata matches the info-hash but is unusable: %w", err)
		} else {
			f.raw, f.info = raw, info
			f.log.Infof("got the metadata (%d bytes) of %q", size, info.Name)
			v2 := f.v2
			if v2.IsZero() && info.Version.HasV2() {
				f.hybridV2 = sha256.Sum256(raw) // a hybrid found by its v1 hash
				v2 = f.hybridV2
			}
			f.layers = newLayerFetch(v2, info)
		}
		close(f.infoIn)
		if f.layers == nil || f.layers.complete() {
			close(f.done)
		}
		f.wakeAll()
		return nil
	}
	senders := map[netip.AddrPort]bool{}
	for _, from := range a.from {
		senders[from] = true
	}
	for i := range a.pieces {
		a.pieces[i], a.from[i] = nil, netip.AddrPort{}
	}
	f.wakeAll()
	if len(senders) == 1 {
		return badPeer("its %d bytes of metadata do not match the info-hash", size)
	}
	// Several peers contributed: start over with one peer fetching it all.
	f.log.Infof("metadata from %d peers does not match the info-hash; fetching it from one peer at a time", len(senders))
	a.strict, a.owner = true, netip.AddrPort{}
	return nil
}

// Serving.

// noteExtHandshake records the peer's ut_metadata id. It runs on the loop.
func (t *Torrent) noteExtHandshake(p *peerConn, h wire.ExtHandshake) {
	// A later handshake may change or drop the id (BEP 10).
	p.metadataID = h.M[wire.ExtMetadata]
}

// handleMetadata answers a peer's ut_metadata message out of the torrent's info
// dictionary. It runs on the loop.
func (t *Torrent) handleMetadata(p *peerConn, payload []byte) {
	mm, err := wire.ParseMetadataMessage(payload)
	if err != nil {
		t.disconnect(p, err.Error())
		return
	}
	if mm.Type != wire.MetadataRequest {
		return // we never ask a torrent's peers: we have the metadata
	}
	if p.floodWarnings++; p.floodWarnings > floodLimit {
		t.disconnect(p, "ut_metadata request flood")
		return
	}
	if p.metadataID == 0 {
		// It never told us where to send ut_metadata messages.
		return
	}
	reply := wire.MetadataMessage{Type: wire.MetadataReject, Piece: mm.Piece}
	size := len(t.mi.InfoBytes)
	if mm.Piece < numMetadataPieces(size) && p.metadataServed < numMetadataPieces(size)+metadataServeBudget {
		p.metadataServed++
		off := mm.Piece * wire.MetadataPieceLen
		reply = wire.MetadataMessage{Type: wire.MetadataData, Piece: mm.Piece, TotalSize: size,
			Data: t.mi.InfoBytes[off : off+metadataPieceSize(size, mm.Piece)]}
	}
	b, err := reply.AppendTo(nil)
	if err != nil {
		return
	}
	p.send(wire.Message{ID: wire.Extended, ExtID: uint8(p.metadataID), Payload: b})
}
