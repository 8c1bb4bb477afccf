package dht

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"net/netip"
	"time"
)

const (
	tokenRotate = 5 * time.Minute
	tokenLen    = 8
)

// tokens makes and checks the get_peers tokens: SHA-1 of a secret and the requester's IP. The
// secret rotates every tokenRotate and the previous one is still accepted, so a token lives
// 5 to 10 minutes. Pure logic with now passed in; owned by the node's loop.
type tokens struct {
	cur, prev [20]byte
	rotated   time.Time
}

func newTokens(now time.Time) *tokens {
	t := &tokens{rotated: now}
	rand.Read(t.cur[:])
	rand.Read(t.prev[:])
	return t
}

func (t *tokens) maybeRotate(now time.Time) {
	if now.Sub(t.rotated) < tokenRotate {
		return
	}
	t.prev = t.cur
	rand.Read(t.cur[:])
	t.rotated = now
}

func tokenFor(secret [20]byte, ip netip.Addr) string {
	h := sha1.New()
	h.Write(secret[:])
	b, _ := ip.Unmap().MarshalBinary()
	h.Write(b)
	return string(h.Sum(nil)[:tokenLen])
}

func (t *tokens) make(ip netip.Addr) string { return tokenFor(t.cur, ip) }

func (t *tokens) valid(tok string, ip netip.Addr) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(tokenFor(t.cur, ip))) == 1 ||
		subtle.ConstantTimeCompare([]byte(tok), []byte(tokenFor(t.prev, ip))) == 1
}
