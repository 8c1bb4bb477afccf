package picker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Randomized swarms: peers with random pieces, rates and latencies that join, leave, stall
// and choke; a reader head moving through the torrent; background on or off. Every run must
// finish with the invariants holding throughout (checked each tick).
func TestSimRandomSwarms(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			pieceLen := int64(1+rng.IntN(8)) * 64 * kib
			n := 20 + rng.IntN(80)
			total := int64(n)*pieceLen - int64(rng.IntN(int(pieceLen)))
			n = int((total + pieceLen - 1) / pieceLen)
			peers := randomPeers(seed, 2+rng.IntN(8), n, rng.Float64(), float64(64+rng.IntN(1024))*kib)
			for _, sp := range peers {
				switch rng.IntN(6) {
				case 0:
					sp.joinAt = time.Duration(rng.IntN(5000)) * time.Millisecond
				case 1:
					sp.leaveAt = time.Duration(1+rng.IntN(5000)) * time.Millisecond
				case 2:
					sp.stallAt = time.Duration(1+rng.IntN(5000)) * time.Millisecond
				case 3:
					for at := time.Duration(0); len(sp.toggles) < 6; {
						at += time.Duration(1+rng.IntN(3000)) * time.Millisecond
						sp.toggles = append(sp.toggles, at)
					}
				}
			}
			// A seed that stays, so the download can always finish.
			peers = append(peers, &simPeer{id: 100, all: true, rate: 128 * kib, latency: 30 * time.Millisecond})
			s := newSim(t, pieceLen, total, int64(seed), peers)
			s.pipeline = 4 + rng.IntN(60)
			background := rng.IntN(3) > 0
			s.p.SetBackground(background)
			bitrate := float64(32+rng.IntN(512)) * kib
			s.onTick = func(s *sim) {
				// The reader plays from piece 0 at bitrate, wanting the next 8 pieces.
				head := int(s.elapsed().Seconds() * bitrate / float64(pieceLen))
				for head < n && s.p.Have(head) {
					head++
				}
				var ws []Want
				for i := head; i < min(head+8, n); i++ {
					d := time.Duration(float64(int64(i-head)*pieceLen) / bitrate * float64(time.Second))
					ws = append(ws, Want{First: i, Last: i, Due: s.now.Add(d)})
				}
				for _, r := range s.p.SetWants(1, ws) {
					delete(s.outstanding[r.Block], r.Peer)
				}
			}
			s.run(30*time.Minute, s.allDone)
			s.checkFinal()
			t.Logf("pieces=%d pieceLen=%d peers=%d pipeline=%d background=%v: %v", n, pieceLen, len(peers), s.pipeline, background, s)
		})
	}
}
