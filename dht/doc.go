// Package dht is a Mainline DHT node (BEP 5) with IPv6 support (BEP 32: nodes6, want) and
// secure node IDs (BEP 42). The engine creates one Node, asks it for the peers of its torrents
// with FindPeers, feeds it the nodes peers tell about with AddNode, and closes it.
//
// Who owns what:
//   - The loop goroutine (loop.go, its select lists everything that can happen to a node)
//     owns the routing tables (table.go), our queries in flight (transactions.go), the peer
//     store (store.go), the token secrets (token.go), the running lookups (lookup.go) and the
//     outgoing rate limit. It answers queries (server.go), handles answers and drives lookups
//     (client.go), and writes to the socket itself: UDP writes do not block meaningfully.
//     It never waits on another goroutine: replies go on capacity-1 channels, found peers
//     into a peerBox.
//   - The reader goroutine (reader.go) owns the read buffer and the ingress limits (per-IP and
//     global query rates, per-IP response rate): it decodes each datagram and hands queries and
//     responses to the loop on two channels, dropping when a channel is full, so a flood of
//     queries neither grows memory nor crowds out the answers lookups wait for.
//   - A resolver goroutine turns the bootstrap list into addresses once and exits.
//   - FindPeers runs on its caller's goroutine: it asks the loop for a lookup, takes the peers
//     from the lookup's peerBox and calls found itself, never on the loop.
//
// The table, lookup, token, store and rate-limit types are pure logic with the time passed
// in. Close stops the loop (which writes the state file), then the reader and the resolver,
// and waits for all of them.
package dht
