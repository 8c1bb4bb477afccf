package picker

import "time"

// Round-trip time, for sizing a peer's request pipeline to its bandwidth-delay product: a
// distant peer needs more requests in flight to stay busy, and its queue ahead of an
// urgent request costs a round trip more to undo.
//
// Each block that arrives from the peer that was asked for it gives a sample: the time
// since the request, less the time the requests queued ahead of it at the peer took at its
// measured rate (and its own transfer); a sample that this leaves less than half of is
// not taken. The estimate is the least sample of a window of rttWindow, carried over when
// a window ends, so it follows a path that gets slower without trusting one
// queue-inflated sample.

const rttWindow = 10 * time.Second

func (pr *peer) latencySample(lat time.Duration, ahead, length int, now time.Time) {
	if lat <= 0 {
		return
	}
	if pr.rate > 0 {
		// A sample that is mostly queue, by our measure of the peer's rate, tells little
		// of the path: a rate measured low (a connection ramping up, a peer we pace)
		// would leave next to nothing, and the window's least sample would be that.
		q := time.Duration(float64((ahead+1)*length) / pr.rate * float64(time.Second))
		if q > lat/2 {
			return
		}
		lat -= q
	}
	lat = max(lat, time.Millisecond/10)
	if now.After(pr.rttWindowEnds) {
		if pr.nextRTT > 0 {
			pr.rtt = pr.nextRTT
		}
		pr.nextRTT, pr.rttWindowEnds = 0, now.Add(rttWindow)
	}
	if pr.nextRTT == 0 || lat < pr.nextRTT {
		pr.nextRTT = lat
	}
	if pr.rtt == 0 || lat < pr.rtt {
		pr.rtt = lat
	}
}

// RTT is the peer's estimated round-trip time, 0 until a block has come back.
func (p *Picker) RTT(id PeerID) time.Duration {
	if pr := p.peers[id]; pr != nil {
		return pr.rtt
	}
	return 0
}
