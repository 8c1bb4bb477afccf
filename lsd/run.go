package lsd

import (
	"net/netip"
	"time"
)

// run is the loop: it owns the schedule, the limiter and every sub's seen set. Everything
// that can happen to a Service is one case of its select.
func (s *Service) run() {
	defer s.wg.Done()
	sched := newSchedule()
	limit := newLimiter(sourceBurst, sourceEvery, maxSources)
	subs := map[[20]byte][]*sub{}
	recent := newRecent(maxRecent)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rearm := func() {
		timer.Stop()
		if at, ok := sched.next(); ok {
			timer.Reset(max(time.Until(at), 0))
		}
	}
	for {
		select {
		case sb := <-s.subscribe:
			sb.seen = map[netip.AddrPort]bool{}
			subs[sb.ih] = append(subs[sb.ih], sb)
			s.report(sb, recent.peers(sb.ih, time.Now()))
			if sb.port != 0 {
				sched.add(sb.ih, sb.port, time.Now())
				s.announceDue(sched)
				rearm()
			}
		case sb := <-s.unsubscribe:
			subs[sb.ih] = remove(subs[sb.ih], sb)
			if len(subs[sb.ih]) == 0 {
				delete(subs, sb.ih)
			}
			if sb.port != 0 {
				sched.remove(sb.ih)
				rearm()
			}
		case h := <-s.heard:
			if !limit.allow(h.from.String(), time.Now()) {
				s.log.WithField("from", h.from).Trace("LSD announce over the rate limit")
				continue
			}
			now := time.Now()
			for _, ih := range h.msg.infohashes {
				recent.add(ih, netip.AddrPortFrom(h.from, h.msg.port), now)
			}
			s.onAnnounce(subs, h)
		case <-timer.C:
			s.announceDue(sched)
			rearm()
		case <-s.closing:
			return
		}
	}
}

// onAnnounce reports a heard peer to every FindPeers call for one of its torrents that
// has not had it yet.
func (s *Service) onAnnounce(subs map[[20]byte][]*sub, h heard) {
	peer := []netip.AddrPort{netip.AddrPortFrom(h.from, h.msg.port)}
	for _, ih := range h.msg.infohashes {
		for _, sb := range subs[ih] {
			s.report(sb, peer)
		}
	}
}

// report hands sb the peers it has not had yet.
func (s *Service) report(sb *sub, peers []netip.AddrPort) {
	var fresh []netip.AddrPort
	for _, p := range peers {
		if !sb.seen[p] {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return
	}
	select {
	case sb.found <- fresh:
		for _, p := range fresh {
			sb.seen[p] = true
		}
		s.log.WithField("peers", fresh).Debugf("LSD peers for %x", sb.ih)
	default:
		// The callback is slow; the peers announce again within 5 minutes.
	}
}

// announceDue queues the messages due now on every socket.
func (s *Service) announceDue(sched *schedule) {
	for _, a := range sched.due(time.Now()) {
		for _, k := range s.socks {
			b := formatMessage(k.group.String(), message{port: a.port, infohashes: a.infohashes, cookie: s.cookie})
			select {
			case k.out <- b:
			default:
				s.log.WithField("interface", k.ifi).Debug("LSD send queue full; announce dropped")
			}
		}
		s.log.Debugf("LSD announce of %d torrents on port %d", len(a.infohashes), a.port)
	}
}

func remove(list []*sub, x *sub) []*sub {
	for i, y := range list {
		if y == x {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}
