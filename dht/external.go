package dht

import "net/netip"

// BEP 42: nodes tell us, in the "ip" field of their answers, the address they see us at.
// Enough distinct nodes agreeing on one public address make it our external IP: it is
// reported in Stats, saved in the state file, and the next start takes a secure node ID for
// it (changing the ID of a running node would throw its routing table away).

const (
	externalVoters = 64 // distinct voters remembered; later ones are ignored
	externalQuorum = 4  // voters that must agree, and be most of them
)

// externalVotes counts which address distinct nodes see us at. The node's loop owns it.
type externalVotes struct {
	votes map[netip.Addr]netip.Addr // voter IP -> the address it reported
}

// add records voter's view of us: a compact address (6 or 18 bytes), from its answer's "ip".
func (e *externalVotes) add(voter netip.Addr, compact string) {
	ap, err := parseCompactAddr(compact)
	if err != nil || !isPublic(ap.Addr()) {
		return
	}
	if e.votes == nil {
		e.votes = map[netip.Addr]netip.Addr{}
	}
	if _, ok := e.votes[voter]; !ok && len(e.votes) >= externalVoters {
		return
	}
	e.votes[voter] = ap.Addr().Unmap()
}

// ip is the address most voters agree on, when at least externalQuorum do and they are
// more than half.
func (e *externalVotes) ip() (netip.Addr, bool) {
	count := map[netip.Addr]int{}
	var best netip.Addr
	for _, a := range e.votes {
		count[a]++
		if count[a] > count[best] {
			best = a
		}
	}
	n := count[best]
	return best, n >= externalQuorum && 2*n > len(e.votes)
}

// isPublic says whether a is a global unicast address outside the private, loopback and
// link-local ranges: the only kind BEP 42 ties node IDs to.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast()
}
