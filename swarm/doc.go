// Package swarm is the BitTorrent engine: it finds peers through trackers and through its
// peers (BEP 11 peer exchange), speaks the peer wire protocol (BEP 3, with BEP 6 fast and
// BEP 10 extension handshakes) over TCP, fetches from web seeds (BEP 19) over HTTP,
// downloads verified pieces into a cache.Storage and uploads to peers that trade with us.
//
// Ownership:
//   - A Client owns the listening socket and the map of torrents (guarded by Client.mu). Its
//     accept goroutine only performs handshakes and hands connections to a torrent. The
//     count of connections of all torrents under ClientConfig.MaxConns is an atomic: a
//     torrent's loop takes room before a dial or for an incoming peer, and the connection
//     gives it back when it closes; each torrent counts what it holds, so its Close
//     returns whatever a connection lost on the way did not.
//   - With ClientConfig.UTP the client also owns a uTP socket (package utp, BEP 29): a
//     second accept goroutine feeds the same handshake path, and dials race the two
//     transports (utp.go): the one that last worked for the address first (TCP for a new
//     one), the other 0.5 s later or as soon as the first fails, and a plaintext try over
//     a transport whose peer dropped our MSE handshake at once; the first BitTorrent
//     handshake wins. Each try is a goroutine that reports to its dial, which alone
//     decides. NoTCP leaves uTP alone. Past the handshake a uTP connection is a net.Conn
//     like a TCP one.
//   - Each Torrent has one goroutine, its run loop, that owns the picker, the set of peers,
//     the choker, the outstanding requests and the per-piece waiters. Everything else talks
//     to it through channels: peer goroutines send decoded messages, disk workers send
//     results, public methods send closures to run on the loop (named methods, listed in
//     torrent_cache.go and torrent_stream.go). Replies go out on channels of capacity one
//     or by closing a channel, so the loop never blocks answering. The loop also owns the
//     peer reserved for due blocks while a reader is about (reserve.go), and a spreading
//     seed's count of which pieces went out to whom (spread.go).
//   - Each connection has a reader goroutine (decode, hand to the loop) and a writer
//     goroutine (drain a queue guarded by the connection's mutex) so the loop never waits on
//     a socket. The reader queues an unchoked peer's requests for pieces we have itself
//     (Torrent.serveRequest: the geometry, presence through Torrent.gen, and the peer's
//     queue and serving flag under that mutex, which the loop's choke takes too); every
//     other request, and every other message, goes to the loop. The writer reads the
//     blocks it uploads (uploadReader, read ahead for a piece asked for in order).
//   - The loop is the one owner of which pieces are on disk: its cache.Ledger decides
//     admission, pins and eviction, the picker follows it, and the storage only executes.
//     Disk writes, piece checks (SHA-1, or a v2-only torrent's SHA-256 merkle roots), hole
//     punching and resume-file writes run in a few disk
//     workers fed by the loop, which report back to it; a piece's waiting blocks go to one
//     worker at a time, in one job, with the piece's running SHA-1 (pieceSum), which
//     spares most pieces a read back to verify them. Other goroutines see presence
//     through Torrent.gen (atomics only the loop writes); reads of the mount ask the loop,
//     which pins their pieces until the bytes are copied (torrent_cache.go).
//   - Storage faults (a full disk, a read-only file system, a file deleted underneath) are
//     never blamed on peers: only a fully written piece whose hash mismatches strikes the
//     peers that sent it. A full disk shrinks the cache to what the disk holds.
//   - A CachePool (cachepool.go) shares one cache bound among torrents: each member's
//     loop publishes its cache's use and the age of its oldest evictable piece in atomics;
//     the pool's goroutine, a few times a second, has the member with the oldest piece
//     evict it on that member's loop until the members fit. It owns only its member set
//     (under its mutex) and its clock (an atomic the members' ledgers stamp reads with).
//   - BEP 52 hash requests (hashes.go) are loop-owned too: a hybrid torrent is in the client's
//     map under both info-hashes, a v2-only one under its truncated v2 info-hash alone (its
//     name in handshakes, trackers, the DHT and LSD: Torrent.InfoHash); a connection that
//     names the v2 one (or takes our v2 bit's offer) trades merkle hashes; the loop keeps our requests, the verified block hashes
//     (v2State) and each peer's bounds, and a disk worker reads and hashes the piece a
//     request below the piece layer needs (jobHashes). A peer whose hashes fail the proof is
//     struck like one whose data fails.
//   - Web seeds (BEP 19, webseed.go and webseed_run.go) are the loop's too: each is a
//     pseudo-peer of the picker with every piece, whose jobs (blocks the picker gave it,
//     fetched as runs of byte ranges) the loop starts, at most three at once, each on a
//     goroutine that owns only its HTTP requests and hands blocks to the loop as a peer's
//     reader does. The loop decides everything else: which blocks, when a failure or a
//     piece failing its hash rests a web seed and for how long, giving up jobs (a rest,
//     a starved due piece); a piece a web seed contributed to that fails is blamed on the
//     web seed alone. The Client owns the one HTTP client (keep-alive connections) that
//     all its torrents' web seeds share.
//   - Counters read from other goroutines (stats for status lines and trackers) are atomics.
//   - Client.FetchMetadata (BEP 9, for magnet links) runs before a Torrent exists: one
//     goroutine per peer connection and one per tracker, sharing the assembly of the info
//     dictionary under the fetch's mutex, and for a v2-only or hybrid torrent the piece
//     layers its v2 connections then ask for (metadata_layers.go; a hybrid found by its v1
//     hash dials its peers again by the v2 one, and takes what layers come within a bound:
//     its pieces have SHA-1 hashes). A Torrent serves its info dictionary to peers
//     from its loop (ut_metadata, advertised in our extension handshake).
//   - Peer exchange (BEP 11, ut_pex, pex.go) runs on the loop too: each connection's PEX
//     state (what we last told that peer, when it may hear from us or be heard next) is
//     loop-owned like the rest of a peerConn; learned addresses join the loop's candidates
//     with the tracker's, within a bound. Private torrents (BEP 27) never speak it.
//   - Protocol encryption (MSE/PE, package swarm/mse) wraps a connection before the
//     BitTorrent handshake, per ClientConfig.Encryption (encryption.go): dials start it,
//     the accept goroutine sniffs plaintext from MSE and answers for whichever torrent of
//     the client the peer names. Past the handshake a connection is a net.Conn like any
//     other; the peers that want plaintext (prefer's fallback), and those that know a
//     hybrid's v2 hash yet drop encrypted dials naming it (retryV2, utp.go), are the
//     client's, each set under its own mutex.
//
// Callers: cmd wires a Client and Torrents; the reader package drives a Torrent through the
// small interface it declares (wants, reads), which Torrent satisfies.
package swarm
