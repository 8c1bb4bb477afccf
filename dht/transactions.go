package dht

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"
)

type txKey struct {
	tid  string
	addr netip.AddrPort
}

// pendingQuery is a query of ours waiting for its answer.
type pendingQuery struct {
	method   string
	deadline time.Time
	slowAt   time.Time  // past it, a lookup stops waiting for it to send the next query
	slow     bool       // slowAt has passed and its lookup was told
	lookup   *lookupRun // the lookup it serves, or nil
}

// transactions matches responses to our queries by (transaction ID, address) and bounds how
// many queries are in flight. Owned by the node's loop.
type transactions struct {
	next uint16
	max  int
	m    map[txKey]*pendingQuery
}

func newTransactions(max int) *transactions {
	return &transactions{next: uint16(rand.Uint32()), max: max, m: map[txKey]*pendingQuery{}}
}

func (t *transactions) full() bool { return len(t.m) >= t.max }

// add registers a query to addr and returns its transaction ID, or false when too many are
// in flight.
func (t *transactions) add(addr netip.AddrPort, p *pendingQuery) (string, bool) {
	if t.full() {
		return "", false
	}
	for {
		t.next++
		tid := string(binary.BigEndian.AppendUint16(nil, t.next))
		k := txKey{tid, addr}
		if _, busy := t.m[k]; !busy {
			t.m[k] = p
			return tid, true
		}
	}
}

// take removes and returns the query answered by a message with tid from addr.
func (t *transactions) take(tid string, addr netip.AddrPort) (*pendingQuery, bool) {
	k := txKey{tid, addr}
	p, ok := t.m[k]
	if ok {
		delete(t.m, k)
	}
	return p, ok
}

type expiredQuery struct {
	addr netip.AddrPort
	p    *pendingQuery
}

// expire removes and returns the queries past their deadline.
func (t *transactions) expire(now time.Time) []expiredQuery {
	var out []expiredQuery
	for k, p := range t.m {
		if !now.Before(p.deadline) {
			out = append(out, expiredQuery{k.addr, p})
			delete(t.m, k)
		}
	}
	return out
}

// slow returns the lookup queries past their slowAt, marking them so each is reported once.
func (t *transactions) slow(now time.Time) []expiredQuery {
	var out []expiredQuery
	for k, p := range t.m {
		if p.lookup != nil && !p.slow && !now.Before(p.slowAt) {
			p.slow = true
			out = append(out, expiredQuery{k.addr, p})
		}
	}
	return out
}
