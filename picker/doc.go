// Package picker decides which blocks to request from which peer. It is pure logic: no
// goroutines, no locks, no clock and no I/O. The caller passes the time in, which makes a
// whole download reproducible in a simulation.
//
// A Picker owns all of its state and is not safe for concurrent use: exactly one goroutine,
// the torrent's run loop, calls it. That state is:
//   - the pieces we have (verified) and the pieces excluded from download (skip mask);
//   - per-piece availability: how many connected peers have each piece, kept in buckets so
//     the rarest piece is found without a scan over all pieces;
//   - for each started ("partial") piece, which blocks are received, which are requested and
//     from whom since when (at most maxCopies, three, copies of one request, and one more
//     for a reserved peer or one that outpaces the three), and which are free;
//   - per peer: what it has, its outstanding requests, its measured rate, whether it choked us;
//   - the wants of the readers (owners), each a list of piece ranges with a due time.
//
// How priorities combine, in the order Pick applies them:
//  1. Due pieces (wanted by a reader by some time), earliest due first, piece order within
//     the same due time; a piece's due time is the earliest over all owners. Free blocks of a
//     due piece are shared among the peers that have it by how soon each could deliver them
//     (water-filling over rate and queued bytes), so fast peers take most, idle peers take
//     some, and a slow peer takes a block only where that does not delay the piece. Blocks
//     of an overdue piece may be requested a second time from a peer expected to deliver
//     sooner than the first. Blocks of a piece a reader is blocked on are requested from up
//     to three peers without that estimate, and to a fourth that has sent us a block since
//     while none of the three has (outpaces); the first to answer wins, the others are
//     cancelled. A copy (reads press) keeps the estimate there too: a second peer gets
//     such a block only if it would deliver it before its holder, or once the holder is
//     late, the read has waited copyPatience, or, before its rate is measured, the peer
//     has answered or is reserved (copyPays, estimates). While reads press (a copy), room a peer has left after its share is
//     filled from the latest due pieces, last first, where it delivers in time
//     (pickWindowTail): a peer measured slow because it was asked for little, a far one in
//     TCP's slow start, works from the window's end toward the others.
//  2. Partial pieces, oldest first: finishing them makes them verifiable and shareable and
//     bounds the number of half-downloaded pieces.
//  3. Rarest first among the pieces the peer has, ties broken by a seeded random order.
//     A web seed (PeerWeb), a source shared by every downloader, instead takes runs of
//     the pieces no peer has while there are any (web.go).
//  4. Endgame: when no wanted block is free any more, blocks outstanding at another peer may
//     be requested again (at most two copies); Received names the peers to cancel.
//
// Requests older than their peer's timeout (twice its queue's drain time at its measured
// rate, 5 s to 60 s) are freed by Expired; the peer then counts as snubbed and gets one
// probing request at a time, never a block another peer could finish a piece with, until it
// delivers again.
//
// Stages 2 and 3 run only while background download is on (SetBackground) and only for
// pieces not excluded with SetSkip; due pieces are fetched regardless of both.
//
// While a viewer is about (SetPaced, and reads that do not press, SetPressing), a peer
// that is not reserved gets the blocks reads wait for first (SetWaited); beyond them it
// has little outstanding, and what stages 1-3 give it is paced to half of its capacity (a
// rate measured while nothing held it back), so that a rate-limited seeder keeps quota for
// the next seek (pace.go).
//
// The run loop drives it like this: PeerAdd on connect, then PeerBitfield / PeerHaveAll /
// PeerHave as the peer announces pieces; PeerUnchoked on unchoke and PeerChoked (BEP 3) or
// PeerChokedFast (BEP 6) on choke; PeerRate on every rate update; Pick whenever the peer has
// free pipeline slots; Received for every block (and Rejected / Cancelled for requests that
// end without one); SetHave or PieceFailed after verification; SetWants when a reader moves;
// Expired once per tick; PeerRemove on disconnect. Per block, Pick and Received cost well
// under a microsecond in BenchmarkPick (50k pieces, 50 peers); a peer's bitfield and its
// removal cost O(pieces) once per peer.
package picker
