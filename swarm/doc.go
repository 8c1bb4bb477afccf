// Package swarm is the BitTorrent engine: it finds peers through trackers, speaks the peer
// wire protocol (BEP 3, with BEP 6 fast and BEP 10 extension handshakes) over TCP, downloads
// verified pieces into a cache.Storage and uploads to peers that trade with us.
//
// Ownership:
//   - A Client owns the listening socket and the map of torrents (guarded by Client.mu). Its
//     accept goroutine only performs handshakes and hands connections to a torrent.
//   - Each Torrent has one goroutine, its run loop, that owns the picker, the set of peers,
//     the choker, the outstanding requests and the per-piece waiters. Everything else talks
//     to it through channels: peer goroutines send decoded messages, disk workers send
//     results, public methods send closures to run on the loop. Replies come back on
//     buffered channels so the loop never blocks answering.
//   - Each connection has a reader goroutine (decode, hand to the loop) and a writer
//     goroutine (drain a queue guarded by the connection's mutex) so the loop never waits on
//     a socket.
//   - SHA-1 checks and disk writes run in a few disk workers fed by the loop.
//   - Counters read from other goroutines (stats for status lines and trackers) are atomics.
//   - Client.FetchMetadata (BEP 9, for magnet links) runs before a Torrent exists: one
//     goroutine per peer connection and one per tracker, sharing the assembly of the info
//     dictionary under the fetch's mutex. A Torrent serves its info dictionary to peers
//     from its loop (ut_metadata, advertised in our extension handshake).
//
// Callers: cmd wires a Client and Torrents; the reader package drives a Torrent through the
// small interface it declares (wants, piece waits, reads), which Torrent satisfies.
package swarm
